"""Images/s of the embedding pipeline (JPEG files -> DataLoader decode + preprocess -> encoder)
next to the bare encoder on ready tensors, measured in the same run. Target: ratio >= 0.9 on CPU.

    .venv/bin/python bench/embed_throughput.py --arch ViT-B-32 --n 256 --repeat 3
    .venv/bin/python bench/embed_throughput.py --arch clipmark-tiny --n 1000

Weights are random (speed does not depend on their values) unless --pretrained is given.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.models.base import ModelSpec  # noqa: E402
from core.models.clip import default_num_workers, embed_images, load_image_text_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SUFFIXES = (".jpg", ".jpeg", ".png")


def default_images() -> Path:
    root = Path(os.environ.get("CLIPMARK_ASSETS", REPO.parent / "shared" / "assets"))
    return root / "data" / "cifar10-dev"


def image_files(folder: Path, n: int) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)
    if not files:
        raise SystemExit(f"no images under {folder}")
    return [files[i % len(files)] for i in range(n)]


def bare_rate(model, batches) -> tuple[float, float]:
    """Images/s of module.encode_image on already-preprocessed tensors, and CPU ms per image."""
    import torch

    start, cpu = time.perf_counter(), _cpu_seconds()
    with torch.inference_mode():
        for batch in batches:
            model.module.encode_image(batch.to(model.device))
    count = sum(len(b) for b in batches)
    return count / (time.perf_counter() - start), (_cpu_seconds() - cpu) * 1e3 / count


class TimedModel:
    """Delegates to a model and adds up the seconds spent in encode_images."""

    def __init__(self, model) -> None:
        self.model = model
        self.encode_s = 0.0

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def encode_images(self, batch):
        start = time.perf_counter()
        try:
            return self.model.encode_images(batch)
        finally:
            self.encode_s += time.perf_counter() - start


def pipeline_rate(model, paths, *, batch_size: int, workers: int | None) -> tuple[float, ...]:
    """Images/s of embed_images from files on disk (decode and preprocess included), the share
    of its time spent outside the encoder (waiting for batches, worker start-up), and the CPU
    ms per image of the main process and its workers together."""
    timed = TimedModel(model)
    start, cpu = time.perf_counter(), _cpu_seconds()
    done = 0
    for batch in embed_images(timed, paths, batch_size=batch_size, num_workers=workers, progress=False):
        done += len(batch.positions) + len(batch.errors)
    elapsed = time.perf_counter() - start
    gc.collect()  # the loader's workers are joined (and their CPU counted) once it is collected
    cpu_ms = (_cpu_seconds() - cpu) * 1e3 / done
    return done / elapsed, 1 - timed.encode_s / elapsed, cpu_ms


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (the loader's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ready_batches(model, paths, batch_size: int):
    """Decoded, preprocessed batches, and the CPU ms per image that decoding + preprocessing cost."""
    import torch

    from core.io.images import open_rgb

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker (torch sets 1 thread there)
    cpu = time.process_time()
    tensors = [model.preprocess(open_rgb(path)) for path in paths]
    decode_ms = (time.process_time() - cpu) * 1e3 / len(paths)
    torch.set_num_threads(threads)
    batches = [torch.stack(tensors[i : i + batch_size]) for i in range(0, len(tensors), batch_size)]
    return batches, decode_ms


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--pretrained", default=None, help="hub tag or local checkpoint")
    parser.add_argument("--images", type=Path, default=default_images())
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="default: the pipeline's")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    import torch

    model = load_image_text_model(ModelSpec(arch=args.arch, pretrained=args.pretrained), device=args.device)
    paths = image_files(args.images, args.n)
    batches, decode_ms = ready_batches(model, paths, args.batch_size)
    workers = (
        args.workers
        if args.workers is not None
        else default_num_workers(device=model.device, n_items=len(paths), batch_size=args.batch_size)
    )
    print(
        f"{model.model_id} on {model.device}, torch threads {torch.get_num_threads()}, "
        f"cores {os.cpu_count()}, n {len(paths)}, batch {args.batch_size}, workers {workers}"
    )
    bare_rate(model, batches[:1])  # warm-up: allocator, kernels, worker start path
    pipeline_rate(model, paths[: args.batch_size * 2], batch_size=args.batch_size, workers=workers)
    rounds = [
        measure_round(model, paths, batches, batch_size=args.batch_size, workers=workers) for _ in range(args.repeat)
    ]
    report(rounds, decode_ms=decode_ms, threads=torch.get_num_threads())


def measure_round(model, paths, batches, *, batch_size: int, workers: int) -> tuple[float, ...]:
    """(bare img/s, pipeline img/s, encode CPU ms per image), measured back to back."""
    bare, encode_ms = bare_rate(model, batches)
    pipe, outside, pipe_ms = pipeline_rate(model, paths, batch_size=batch_size, workers=workers)
    print(
        f"  round: bare {bare:.1f} img/s, pipeline {pipe:.1f} img/s, ratio {pipe / bare:.3f}; "
        f"outside the encoder {outside:.1%}; CPU ms/img bare {encode_ms:.1f}, "
        f"pipeline {pipe_ms:.1f}"
    )
    return bare, pipe, encode_ms, outside, pipe_ms


def report(rounds: list[tuple[float, ...]], *, decode_ms: float, threads: int) -> None:
    bare = statistics.median(r[0] for r in rounds)
    pipe = statistics.median(r[1] for r in rounds)
    paired = statistics.median(r[1] / r[0] for r in rounds)
    print(
        f"median: bare encode_image {bare:.1f} img/s | pipeline (files -> embeddings) "
        f"{pipe:.1f} img/s | ratio {pipe / bare:.3f} (median of round ratios {paired:.3f})"
    )
    outside = statistics.median(r[3] for r in rounds)
    print(
        f"pipeline time outside the encoder (loader waits, worker start-up): {outside:.1%}, "
        f"so within each run the pipeline keeps {1 - outside:.3f} of the encoder's speed"
    )
    encode = statistics.median(r[2] for r in rounds)
    pipe_ms = statistics.median(r[4] for r in rounds)
    print(
        f"CPU ms per image, main process + workers: bare {encode:.1f}, pipeline {pipe_ms:.1f}; "
        f"CPU-efficiency ratio {encode / pipe_ms:.3f} (robust to other load)"
    )
    ideal = encode / threads  # encode wall time per image with every thread busy
    print(
        f"decode + preprocess alone: {decode_ms:.2f} CPU ms/img (1 thread, as in a worker); "
        f"not overlapped at all it would cap the ratio at {ideal / (ideal + decode_ms):.3f}"
    )


if __name__ == "__main__":
    main()
