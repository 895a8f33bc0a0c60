"""All instances of an image drawn into one small palette PNG (one picture, however many
instances), and the colour each instance is drawn in (the instance list shows the same swatch)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image as Picture

from core.segment.masks import rle_decode

# Distinct colours for instances (RGBA); the outline of each is drawn opaque.
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40))
FILL_ALPHA = 90


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def instances_png(rles: Sequence[dict[str, Any]], *, max_side: int = 640) -> bytes | None:
    """One palette PNG with every mask filled in its colour (instance k: colour(k)) and outlined;
    None without instances. Masks are reduced to the overlay size before they are combined."""
    if not rles:
        return None
    height, width = rles[0]["size"]
    step = max(1, int(np.ceil(max(height, width) / max_side)))
    index = np.zeros((len(range(0, height, step)), len(range(0, width, step))), dtype=np.uint8)
    for k, rle in enumerate(rles):
        small = rle_decode(rle)[::step, ::step]
        index[small] = 1 + 2 * (k % len(PALETTE))
        index[small & _edge(small)] = 2 + 2 * (k % len(PALETTE))
    palette, alpha = [0, 0, 0], [0]
    for rgb in PALETTE:
        palette += [*rgb, *rgb]
        alpha += [FILL_ALPHA, 255]
    picture = Picture.fromarray(index, mode="P")
    picture.putpalette(palette)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", transparency=bytes(alpha))  # optimize=True costs ~10x the time
    return buffer.getvalue()


def _edge(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask with a neighbour outside it (4-neighbourhood; the border counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner
