"""Speed of the mask encodings on one SAM-sized mask: RLE encode/decode, area, box and IoU.

Usage: .venv/bin/python bench/masks_speed.py [--height 768] [--width 1024] [--repeats 50]
The mask is a smooth blob (an ellipse and a disc), as SAM returns: a few runs per column.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.segment.masks import mask_bbox, mask_iou, rle_area, rle_decode, rle_encode  # noqa: E402


def blob(height: int, width: int, *, shift: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    ellipse = (yy - height / 2) ** 2 / (height / 3) ** 2 + (xx - width / 2 - shift) ** 2 / (width / 3) ** 2 < 1
    return ellipse | ((yy - height / 5) ** 2 + (xx - 4 * width / 5) ** 2 < (height / 8) ** 2)


def best_ms(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    mask, other = blob(args.height, args.width), blob(args.height, args.width, shift=args.width // 10)
    rle = rle_encode(mask)
    cases = {"rle_encode": lambda: rle_encode(mask), "rle_decode": lambda: rle_decode(rle),
             "rle_area": lambda: rle_area(rle), "mask_bbox": lambda: mask_bbox(mask),
             "mask_iou": lambda: mask_iou(mask, other)}
    print(f"{args.height}x{args.width} mask, {len(rle['counts'])} RLE chars; best of {args.repeats}, ms")
    for name, fn in cases.items():
        print(f"{name:>12} {best_ms(args.repeats, fn):8.3f}", flush=True)


if __name__ == "__main__":
    main()
