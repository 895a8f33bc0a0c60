"""Mask encodings against pycocotools, polygons, the browser overlay and the masked crop."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco

from core.errors import InvalidInput
from core.segment.masks import (
    CLIP_MEAN_RGB,
    mask_bbox,
    mask_iou,
    mask_to_polygons,
    masked_crop,
    overlay_png,
    rle_area,
    rle_decode,
    rle_encode,
    rle_ious,
)


def blob(shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    ellipse = (yy - 60) ** 2 / 40**2 + (xx - 70) ** 2 / 55**2 < 1
    return ellipse | ((yy - 25) ** 2 + (xx - 135) ** 2 < 15**2)


def masks() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    fixed = [
        np.zeros((5, 7), bool),
        np.ones((5, 7), bool),
        rng.random((1, 37)) > 0.5,
        rng.random((41, 1)) > 0.5,
        np.ones((1, 1), bool),
        rng.random((100, 130)) > 0.5,
        rng.random((200, 150)) > 0.97,
        blob(),
        np.pad(np.ones((300, 500), bool), ((0, 724), (0, 524))),
    ]
    sizes = rng.integers(1, 40, (60, 2))
    return fixed + [rng.random(tuple(size)) > rng.random() for size in sizes]


def reference(mask: np.ndarray) -> dict:
    return coco.encode(np.asfortranarray(mask.astype(np.uint8)))


@pytest.mark.parametrize("mask", masks(), ids=lambda m: f"{m.shape[0]}x{m.shape[1]}-{int(m.sum())}")
def test_rle_matches_pycocotools(mask):
    expected = reference(mask)
    rle = rle_encode(mask)
    assert rle == {"size": [mask.shape[0], mask.shape[1]], "counts": expected["counts"].decode("ascii")}
    np.testing.assert_array_equal(rle_decode(rle), mask)
    np.testing.assert_array_equal(rle_decode(expected), coco.decode(expected).astype(bool))
    assert rle_area(rle) == int(mask.sum()) == int(coco.area(expected))
    assert mask_bbox(mask) == coco.toBbox(expected).tolist()


def test_rle_decode_accepts_uncompressed_counts():
    mask = blob()
    flat = mask.ravel(order="F")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()  # blob() starts with a zero pixel
    uncompressed = {"size": list(mask.shape), "counts": counts}
    np.testing.assert_array_equal(rle_decode(uncompressed), mask)
    assert rle_area(uncompressed) == int(mask.sum())
    compressed = coco.frPyObjects(uncompressed, *mask.shape)
    assert rle_encode(mask)["counts"] == compressed["counts"].decode("ascii")


@pytest.mark.parametrize(
    "rle",
    [{"size": [2, 2], "counts": [1, 2]}, {"size": [2, 2]}, {"size": [2, 2], "counts": "\x01"}, {"counts": "0"}],
)
def test_bad_rle_is_invalid_input(rle):
    with pytest.raises(InvalidInput, match="rle"):
        rle_decode(rle)


def test_mask_iou():
    a, b = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    a[:, :6], b[:, 4:] = True, True
    assert mask_iou(a, b) == pytest.approx(20 / 100)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 0.0
    expected = coco.iou([reference(a)], [reference(b)], [0])[0, 0]
    assert mask_iou(a, b) == pytest.approx(expected)
    with pytest.raises(InvalidInput, match="shapes"):
        mask_iou(a, np.zeros((10, 11), bool))


def test_rle_ious_are_mask_iou_on_the_encodings():
    """Exactly mask_iou's values (what the proposal duplicate check compares with its threshold), for
    random discs, near-copies, an empty mask and an uncompressed RLE; shapes must agree."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:48, :64]
    masks = [(yy - rng.integers(48)) ** 2 + (xx - rng.integers(64)) ** 2 < rng.integers(3, 30) ** 2 for _ in range(12)]
    masks += [np.roll(m, 1, axis=1) for m in masks[:4]] + [np.zeros((48, 64), bool)]
    rles = [rle_encode(m) for m in masks]
    uncompressed = {"size": [48, 64], "counts": list(coco_runs(masks[0]))}
    ious = rle_ious(rles, [*rles, uncompressed])
    expected = [[mask_iou(a, b) for b in [*masks, masks[0]]] for a in masks]
    assert ious.shape == (len(masks), len(masks) + 1) and (ious == np.array(expected)).all()
    assert rle_ious([], rles).shape == (0, len(rles)) and rle_ious(rles, []).shape == (len(rles), 0)
    with pytest.raises(InvalidInput, match=r"masks: shapes differ \(\(48, 64\) vs \(48, 65\)\)"):
        rle_ious(rles, [rle_encode(np.zeros((48, 65), bool))])


def coco_runs(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO counts: alternating runs of 0s and 1s in column-major order, 0s first."""
    flat = mask.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], edges])).tolist()


def rasterise(polygons: list[list[float]], shape: tuple[int, int]) -> np.ndarray:
    return coco.decode(coco.merge(coco.frPyObjects(polygons, *shape))).astype(bool)


def test_polygons_rasterise_back_to_the_mask():
    mask = blob()
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 2  # the ellipse and the disc
    assert all(len(p) >= 6 and len(p) % 2 == 0 for p in polygons)
    assert mask_iou(rasterise(polygons, mask.shape), mask) > 0.95
    edge = np.zeros((50, 60), bool)
    edge[:20, 30:] = True  # touching the image border
    assert mask_iou(rasterise(mask_to_polygons(edge), edge.shape), edge) > 0.9


def test_polygons_drop_holes_and_specks():
    yy, xx = np.mgrid[:100, :100]
    ring = ((yy - 50) ** 2 + (xx - 50) ** 2 < 40**2) & ~((yy - 50) ** 2 + (xx - 50) ** 2 < 15**2)
    polygons = mask_to_polygons(ring)
    assert len(polygons) == 1
    filled = (yy - 50) ** 2 + (xx - 50) ** 2 < 40**2
    assert mask_iou(rasterise(polygons, ring.shape), filled) > 0.95
    assert mask_to_polygons(np.zeros((10, 10), bool)) == []
    tiny = np.zeros((10, 10), bool)
    tiny[4, 4] = True
    assert all(len(p) >= 6 for p in mask_to_polygons(tiny))


def decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_overlay_is_a_small_palette_png():
    mask = np.zeros((1024, 1024), bool)
    mask[:, :512] = True
    data = overlay_png(mask)
    assert len(data) < 20_000
    image = decode_png(data)
    assert image.mode == "P" and image.size == (512, 512)
    rgba = np.asarray(image.convert("RGBA"))
    assert tuple(rgba[256, 100]) == (30, 144, 255, 110)  # inside: translucent fill
    assert tuple(rgba[256, 255]) == (30, 144, 255, 255)  # the boundary column: opaque outline
    assert rgba[256, 300, 3] == 0  # outside: transparent


def test_overlay_keeps_small_masks_and_aspect():
    mask = np.zeros((30, 2000), bool)
    mask[10:20, 100:900] = True
    image = decode_png(overlay_png(mask, max_side=500, rgba=(255, 0, 0, 80)))
    assert image.size == (500, 8)
    assert decode_png(overlay_png(blob())).size == (160, 120)
    with pytest.raises(InvalidInput, match="rgba"):
        overlay_png(blob(), rgba=(1, 2, 3))


def test_masked_crop():
    image = np.random.default_rng(0).integers(0, 255, (100, 200, 3), dtype=np.uint8)
    mask = np.zeros((100, 200), bool)
    mask[40:60, 50:90] = True  # w 40, h 20: pad 0.1 grows 4 px per side
    crop = masked_crop(image, mask)
    assert crop.shape == (28, 48, 3)
    np.testing.assert_array_equal(crop[4:24, 4:44], image[40:60, 50:90])
    assert (crop[0, 0] == CLIP_MEAN_RGB).all() and (crop[-1, -1] == CLIP_MEAN_RGB).all()
    corner = np.zeros((100, 200), bool)
    corner[:10, :10] = True
    assert masked_crop(image, corner, pad=0.5).shape == (15, 15, 3)  # clipped at the image border
    with pytest.raises(InvalidInput, match="mask: empty"):
        masked_crop(image, np.zeros((100, 200), bool))
    with pytest.raises(InvalidInput, match="image"):
        masked_crop(image, np.ones((10, 10), bool))


def test_resize_mask_nearest() -> None:
    from core.segment.masks import resize_mask

    mask = np.zeros((40, 60), dtype=bool)
    mask[10:30, 20:50] = True
    small = resize_mask(mask, (20, 30))
    assert small.shape == (20, 30) and small.dtype == bool
    assert small[5:15, 10:25].all() and small.sum() == 10 * 15
    assert resize_mask(mask, (40, 60)) is mask
