"""Training and export figures, side by side in one run (issue 14):

1. head export: the CLIP image encoder + the adapted head as one ONNX graph (seconds);
2. student training images/s (JPEG files -> DataLoader workers decode + augment -> forward/backward/step)
   against the bare model's forward+backward+step on the same batches already in memory (target >= 0.9),
   both from the end of the first step to the end of the last (the warm-up step left out on both sides);
3. inference images/s on the CPU of the exported student against the exported CLIP classifier it was
   distilled from, both through onnxruntime at batch 32 (target >= 10x for mobilenetv3_small_100 vs ViT-B-32).

    .venv/bin/python bench/train.py --n 320 --inference-n 64 --image-size 224 --batch 16

Weights are random (speed does not depend on their values).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Before torch loads: OpenMP threads that spin between ops starve the decoding worker (see docs/training.md)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from core.models import student as net  # noqa: E402
from core.models.base import ModelSpec  # noqa: E402
from core.models.clip import load_image_text_model  # noqa: E402
from core.models.export_onnx import export_clip_head, preprocess_config  # noqa: E402
from core.models.onnx_runtime import OnnxClassifier  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLASSES = 10


def image_files(n: int) -> list[str]:
    root = Path(os.environ.get("CLIPMARK_ASSETS", REPO.parent / "shared" / "assets")) / "data" / "cifar10-dev"
    files = sorted(str(p) for p in root.rglob("*.jpg"))
    if not files:
        raise SystemExit(f"no images under {root}")
    return [files[i % len(files)] for i in range(n)]


def random_head(dim: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    head = rng.normal(size=(CLASSES, dim)).astype(np.float32)
    head /= np.linalg.norm(head, axis=1, keepdims=True)
    return {"text_head": head, "logit_scale": np.array([100.0], np.float32),
            "delta": rng.normal(0, 0.1, size=(dim, CLASSES)).astype(np.float32),
            "offset": np.zeros(CLASSES, np.float32), "gate": np.array([2.0], np.float32),
            # the class-means term (issue 13's learner) at zero weight: the graph is the same size
            "means": np.zeros((CLASSES, dim), np.float32), "means_center": np.zeros(dim, np.float32),
            "means_scale": np.array([0.0], np.float32), "means_known": np.ones(CLASSES, np.float32),
            "means_weight": np.array([0.0], np.float32)}


def head_export(arch: str, folder: Path) -> tuple[float, dict]:
    clip = load_image_text_model(ModelSpec(arch=arch), device="cpu")
    pre = preprocess_config(clip.preprocess)
    start = time.perf_counter()
    export_clip_head(clip.module, random_head(clip.embed_dim, np.random.default_rng(0)), folder / "model.onnx",
                     image_size=pre["image_size"])
    seconds = time.perf_counter() - start
    (folder / "config.json").write_text(__import__("json").dumps(
        {"kind": "head", "class_names": [str(k) for k in range(CLASSES)], "preprocess": pre}))
    return seconds, pre


def student_training(name: str, files: list[str], args: argparse.Namespace, workdir: Path) -> tuple[float, float]:
    """(pipeline images/s, bare forward+backward+step images/s on the same batches)."""
    import torch
    from timm.data import create_transform

    targets = np.eye(CLASSES, dtype=np.float32)[np.arange(len(files)) % CLASSES]
    settings = net.TrainSettings(epochs=1, batch_size=args.batch, image_size=args.image_size,
                                 num_workers=args.workers, checkpoint_every=10**9)
    module, _ = net.build_student(name, num_classes=CLASSES, pretrained=False)
    stamps: list[float] = []   # wall clock after each step: the first step (warm-up) is left out, as for bare

    def stamp(step: int, total: int, loss: float, rate: float) -> bool:
        stamps.append(time.perf_counter())
        return True

    log = net.train_student(module, files, targets, settings=settings, workdir=workdir, on_step=stamp)
    transform = create_transform(args.image_size, is_training=True, mean=net.IMAGENET_MEAN, std=net.IMAGENET_STD)
    from PIL import Image

    batches = [torch.stack([transform(Image.open(f).convert("RGB")) for f in files[i:i + args.batch]])
               for i in range(0, len(files), args.batch)]
    bare, _ = net.build_student(name, num_classes=CLASSES, pretrained=False)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bare.to(device).train()
    optimizer = torch.optim.AdamW(bare.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=device == "cuda")
    soft = torch.from_numpy(targets)
    net._step(bare, batches[0].to(device), soft[: len(batches[0])].to(device), optimizer, scaler, device=device)
    start, seen = time.perf_counter(), 0
    for k, batch in enumerate(batches[1:], start=1):   # the pipeline's first batch is not timed either
        net._step(bare, batch.to(device), soft[k * args.batch: k * args.batch + len(batch)].to(device), optimizer,
                  scaler, device=device)
        seen += len(batch)
    if device == "cuda":
        torch.cuda.synchronize()
    # steps 2..N: waits for the loader included, the first batch excluded on both sides
    pipeline_rate = (log.seen - min(args.batch, log.seen)) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return pipeline_rate, seen / (time.perf_counter() - start)


def onnx_rate(folder: Path, n: int, image_size: int, batch: int = 32) -> float:
    runner = OnnxClassifier.load(folder)
    pixels = np.random.default_rng(0).normal(size=(batch, 3, image_size, image_size)).astype(np.float32)
    runner.run(pixels)
    start, done = time.perf_counter(), 0
    while done < n:
        runner.run(pixels)
        done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="ViT-B-32", help="the CLIP architecture (random weights)")
    parser.add_argument("--student", default="mobilenetv3_small_100")
    parser.add_argument("--n", type=int, default=256, help="training images (CIFAR-10 JPEGs, repeated)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="decoding workers (default: as clipmark train)")
    parser.add_argument("--repeat", type=int, default=5, help="training measurements (median reported)")
    parser.add_argument("--inference-n", type=int, default=128, help="images per inference timing")
    args = parser.parse_args()
    if args.workers is None:
        args.workers = net.default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "clip").mkdir()
        seconds, pre = head_export(args.arch, root / "clip")
        print(f"head export ({args.arch} + head, one ONNX graph): {seconds:.2f} s")
        runs = [student_training(args.student, image_files(args.n), args, root / f"ckpt{k}")
                for k in range(args.repeat)]   # pipeline and bare alternate, so a busy moment hits both
        rate, bare = statistics.median(r for r, _ in runs), statistics.median(b for _, b in runs)
        ratio = statistics.median(r / b for r, b in runs)   # each run's pair was measured back to back
        print(f"student training {args.student} @{args.image_size}px, batch {args.batch}, {args.workers} workers "
              f"(median of {args.repeat}): {rate:.1f} img/s; bare forward+backward+step on the same batches: "
              f"{bare:.1f} img/s; ratio {ratio:.2f} (median of the runs' ratios; runs: "
              + ", ".join(f"{r:.1f}/{b:.1f}" for r, b in runs) + ")")
        module, _ = net.build_student(args.student, num_classes=CLASSES, pretrained=False)
        net.export_student(module, root / "student", image_size=args.image_size, metadata={})
        (root / "student" / "config.json").write_text(__import__("json").dumps(
            {"kind": "student", "class_names": [str(k) for k in range(CLASSES)],
             "preprocess": net.eval_preprocess(args.image_size)}))
        student_rate = onnx_rate(root / "student", args.inference_n, args.image_size)
        clip_rate = onnx_rate(root / "clip", args.inference_n, pre["image_size"])
        print(f"CPU inference (onnxruntime, batch 32): {args.student} {student_rate:.1f} img/s, "
              f"{args.arch} classifier {clip_rate:.1f} img/s: {student_rate / clip_rate:.1f}x")


if __name__ == "__main__":
    main()
