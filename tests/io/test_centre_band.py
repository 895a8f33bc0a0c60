"""Pictures of extreme shape reach the classifiers' preprocessing as their centre band: nothing a
photo up to 8:1 sees changes, and a 1 x 2,000,000-pixel PNG (a few KB, under the pixel cap) is
classified in bounded memory instead of asking the resize for a 224 x 448,000,000 picture."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.io.images import CENTRE_BAND_RATIO, centre_band
from core.models.onnx_runtime import preprocess

CONFIG = {"resize_size": 224, "crop_size": 224, "interpolation": "bicubic", "mean": [0.48, 0.46, 0.41],
          "std": [0.27, 0.26, 0.28]}


def picture(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(width * 7 + height)
    small = (rng.random((height // 8 + 1, width // 8 + 1, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)


def test_pictures_up_to_the_ratio_are_the_same_object_and_others_keep_their_centre() -> None:
    for size in ((800, 100), (100, 800), (300, 300), (1, 8)):
        image = picture(*size)
        assert centre_band(image) is image
    wide = picture(1000, 50)
    band = centre_band(wide)
    assert band.size == (int(CENTRE_BAND_RATIO * 50), 50)
    left = (1000 - band.size[0]) // 2
    assert np.array_equal(np.asarray(band), np.asarray(wide)[:, left: left + band.size[0]])
    assert centre_band(picture(3, 1000)).size == (3, 24)


def test_the_centre_square_is_what_the_preprocessing_sees_either_way() -> None:
    """Cutting a 20:1 picture changes the normalised pixels by a sub-pixel shift of the resize grid
    at most: well under what one grey level x the normalisation makes."""
    image = picture(2000, 100)
    cut = preprocess(image, CONFIG)
    assert cut.shape == (3, 224, 224)
    reference = np.asarray(image.crop((950, 0, 1050, 100)).resize((224, 224), Image.Resampling.BICUBIC),
                           dtype=np.float32) / 255.0
    expected = ((reference - np.asarray(CONFIG["mean"], np.float32)) / np.asarray(CONFIG["std"], np.float32))
    assert np.abs(cut - expected.transpose(2, 0, 1)).max() < 0.1


def test_a_two_million_pixel_line_is_preprocessed_in_bounded_memory() -> None:
    line = Image.new("RGB", (1, 2_000_000), (200, 30, 30))
    pixels = preprocess(line, CONFIG)  # without the band: a 224 x 448,000,000 resize
    assert pixels.shape == (3, 224, 224) and np.isfinite(pixels).all()
