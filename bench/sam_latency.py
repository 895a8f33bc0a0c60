"""Segment Anything latency: encoder time per image, and click-to-mask time on a cached embedding.

Usage: .venv/bin/python bench/sam_latency.py [--models vit_b,vit_t] [--images 3] [--clicks 50]
                                             [--device cpu] [--threads N] [--size 768x1024]
                                             [--photo-size 3000x4000]
Smallest run (seconds, checks the script works): --models tiny --images 1 --clicks 3 --size 96x128
--photo-size 96x128.

Models use random weights at their real size (vit_b: SAM ViT-B, ~94M parameters; vit_t: MobileSAM,
~10M); latency does not depend on the weights. For each model: one warm-up encoder run, then the mean
over --images random images. Then, on a cached embedding (what the web app holds after the first
click), --clicks random prompts through `predict` only, in two series: one positive click, and two
points (positive + negative) plus a box. "+ overlay" adds what the click handler also does: pick the
best of the masks and encode it with `overlay_png` for the browser. vit_l / vit_h only on request.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.models.sam import ImageEmbedding, SamSegmenter, SegmenterSpec, load_segmenter  # noqa: E402
from core.segment.masks import overlay_png  # noqa: E402
from core.store.repo import ClassSpec  # noqa: E402

TARGET_P95_MS = 150.0


def synthetic_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Noise with a few flat discs, so masks have edges like a photo's."""
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:height, :width]
    for _ in range(6):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(height // 10, height // 3)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rng.integers(0, 255, 3)
    return image


def single_click(rng: np.random.Generator, height: int, width: int) -> dict:
    return {"points": np.array([[rng.uniform(0, width), rng.uniform(0, height)]]), "labels": np.array([1])}


def points_and_box(rng: np.random.Generator, height: int, width: int) -> dict:
    x0, x1 = np.sort(rng.uniform(0, width, 2))
    y0, y1 = np.sort(rng.uniform(0, height, 2))
    inside = [rng.uniform(x0, x1), rng.uniform(y0, y1)]
    outside = [rng.uniform(0, width), rng.uniform(0, height)]
    return {"points": np.array([inside, outside]), "labels": np.array([1, 0]), "box": np.array([x0, y0, x1, y1])}


def time_clicks(
    segmenter: SamSegmenter, embedding: ImageEmbedding, prompt: Callable[..., dict], *, clicks: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds per click: `predict` alone, and `predict` + best mask + `overlay_png`."""
    rng = np.random.default_rng(seed)
    height, width = embedding.original_size
    bare, drawn = [], []
    for index in range(clicks + 2):  # two warm-up clicks
        options = prompt(rng, height, width)
        start = time.perf_counter()
        prediction = segmenter.predict(embedding, **options)
        predicted = time.perf_counter()
        overlay_png(prediction.masks[int(np.argmax(prediction.scores))])
        if index >= 2:
            bare.append(predicted - start)
            drawn.append(time.perf_counter() - start)
    return 1000 * np.asarray(bare), 1000 * np.asarray(drawn)


def bench_model(name: str, *, images: int, clicks: int, device: str | None, size: tuple[int, int]) -> list[str]:
    start = time.perf_counter()
    segmenter = load_segmenter(SegmenterSpec(name, checkpoint="random"), device=device)
    params = sum(p.numel() for p in segmenter.module.parameters()) / 1e6
    print(f"{name}: built in {time.perf_counter() - start:.1f} s ({params:.1f}M parameters, {segmenter.device})")
    rng = np.random.default_rng(0)
    embedding = segmenter.embed(synthetic_image(rng, *size))  # warm-up
    encode_s = []
    for _ in range(images):
        image = synthetic_image(rng, *size)
        start = time.perf_counter()
        embedding = segmenter.embed(image)
        encode_s.append(time.perf_counter() - start)
    rows = []
    for label, prompt in (("1 click", single_click), ("2 points + box", points_and_box)):
        bare, drawn = time_clicks(segmenter, embedding, prompt, clicks=clicks, seed=1)
        p50, p95 = np.percentile(bare, [50, 95])
        q50, q95 = np.percentile(drawn, [50, 95])
        verdict = "ok" if q95 < TARGET_P95_MS else "SLOW"
        rows.append(
            f"{name:6} {np.mean(encode_s):9.2f} {label:15} {p50:8.1f} {p95:8.1f} {q50:10.1f} {q95:10.1f}  {verdict}"
        )
    return rows


def first_image(service: Any, path: Path) -> int:
    """A project 'bench' holding this one image; its id."""
    service.projects.create("bench", classes=[ClassSpec("thing"), ClassSpec("other")])
    service.importing.images("bench", [path], progress=False)
    image_id = service.regions.neighbour("bench", None, 1)
    assert image_id is not None, f"{path} was not imported"
    return int(image_id)


def service_clicks(name: str, *, clicks: int, device: str | None, size: tuple[int, int]) -> str:
    """The server's whole click path, as the web app runs it: Service.regions.segment on a stored image
    whose embedding is cached (image row lookup, cached embedding, predict, box and PNG of all 3 masks)."""
    import tempfile

    from PIL import Image

    from core.config import Settings
    from core.service import Service

    with tempfile.TemporaryDirectory(prefix="clipmark-sam-bench-") as folder:
        path = Path(folder) / "photo.png"
        Image.fromarray(synthetic_image(np.random.default_rng(2), *size)).save(path)
        service = Service(Settings(db=str(Path(folder) / "b.sqlite"), media_dir=Path(folder) / "media",
                                   sam_model=name, sam_checkpoint="random", device=device, user="bench"))
        image_id = first_image(service, path)
        regions = service.regions
        regions.runtime.embedding(regions.image("bench", image_id))  # the encoder runs once; clicks use the cache
        rng = np.random.default_rng(3)
        times = []
        for index in range(clicks + 2):
            prompt = {"points": [[rng.uniform(0, size[1]), rng.uniform(0, size[0]), 1]]}
            start = time.perf_counter()
            regions.segment("bench", image_id, prompt)
            if index >= 2:
                times.append(1000 * (time.perf_counter() - start))
        service.close()
    p50, p95 = np.percentile(times, [50, 95])
    return f"{name:6} service click (3 masks as PNG + DB): p50 {p50:.1f} ms, p95 {p95:.1f} ms  " + (
        "ok" if p95 < TARGET_P95_MS else "SLOW")


def overlay_cost(size: tuple[int, int], *, instances: int = 100) -> str:
    """Drawing all instances of an image into the one overlay PNG the region card shows (what
    core.usecases.regions.overlays.OverlayMemo remembers per set of instances instead of redrawing
    on each click)."""
    from core.segment.masks import rle_encode
    from core.segment.view import instances_png

    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[: size[0], : size[1]]
    rles = []
    for _ in range(instances):
        cy, cx, r = rng.integers(0, size[0]), rng.integers(0, size[1]), rng.integers(10, 60)
        rles.append(rle_encode((yy - cy) ** 2 + (xx - cx) ** 2 < r * r))
    start = time.perf_counter()
    for _ in range(5):
        instances_png(rles)
    return f"overlay of {instances} instances drawn afresh: {1000 * (time.perf_counter() - start) / 5:.1f} ms per click"


def labels_request(*, size: tuple[int, int], repeats: int = 10) -> str:
    """The click's second request (CLIP's classes for the mask on screen) on a large photo, with the tiny
    CLIP and tiny Sam so that what is timed is the work around the models: reading the image, making the
    mask, cropping. Saving the mask as an instance (full size, as stored) is timed beside it."""
    import tempfile

    from PIL import Image

    from core.config import Settings
    from core.models.tiny import TINY_NAME
    from core.service import Service

    with tempfile.TemporaryDirectory(prefix="clipmark-sam-bench-") as folder:
        path = Path(folder) / "photo.jpg"
        Image.fromarray(synthetic_image(np.random.default_rng(5), *size)).save(path, quality=90)
        service = Service(Settings(db=str(Path(folder) / "b.sqlite"), media_dir=Path(folder) / "media",
                                   model=TINY_NAME, pretrained=None, sam_model="tiny", user="bench"))
        image_id = first_image(service, path)
        service.embedding.embed("bench", progress=False)
        prompt = {"points": [[size[1] / 2, size[0] / 2, 1]]}
        regions = service.regions
        regions.candidate_labels("bench", image_id, prompt, None)  # warm: encoder, display copy
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            regions.candidate_labels("bench", image_id, prompt, None)
            times.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        regions.add_instance("bench", image_id, prompt, label="thing")
        saved = 1000 * (time.perf_counter() - start)
        service.close()
    return (f"labels request on a {size[1]}x{size[0]} photo: p50 {np.percentile(times, 50):.0f} ms; "
            f"saving the instance: {saved:.0f} ms (tiny models)")


def hxw(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vit_b,vit_t", help="comma-separated: vit_b, vit_t, vit_l, vit_h")
    parser.add_argument("--images", type=int, default=3, help="images timed through the encoder (after 1 warm-up)")
    parser.add_argument("--clicks", type=int, default=50, help="prompts timed per series")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--size", default="768x1024", help="image HxW")
    parser.add_argument("--photo-size", default="3000x4000", help="HxW of the photo of the labels request")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = hxw(args.size)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, image {height}x{width}")
    rows, service_rows = [], []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        rows += bench_model(name, images=args.images, clicks=args.clicks, device=args.device, size=(height, width))
        service_rows.append(service_clicks(name, clicks=args.clicks, device=args.device, size=(height, width)))
    print(f"\ntarget: click-to-mask p95 < {TARGET_P95_MS:.0f} ms (with the overlay)")
    print("model  encoder_s prompt           p50_ms   p95_ms +overlay50 +overlay95")
    print("\n".join(rows))
    print("\n".join(service_rows))
    print(overlay_cost((height, width)))
    print(labels_request(size=hxw(args.photo_size)))


if __name__ == "__main__":
    main()
