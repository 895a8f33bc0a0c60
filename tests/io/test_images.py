"""Decoding, validation and RGB conversion of good and malformed images (core.io.images)."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import ImageError, InvalidInput
from core.io.images import (
    IMAGE_EXTENSIONS,
    SUPPORTED_FORMATS,
    inspect_image,
    open_rgb,
    thumbnail_bytes,
    to_rgb,
)
from tests.io.corpus import (
    ALL_GOOD_BUILDERS,
    BAD_BUILDERS,
    GIF_FIRST_COLOUR,
    GOOD_SIZES,
    bomb_png,
    build_corpus,
    gradient,
    gray16,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("corpus")
    build_corpus(directory, modern=True)
    return directory


def test_corpus_covers_every_supported_format(corpus: Path) -> None:
    formats = {inspect_image((corpus / n).read_bytes(), source=n).format for n in ALL_GOOD_BUILDERS}
    assert formats == SUPPORTED_FORMATS
    assert {Path(name).suffix for name in ALL_GOOD_BUILDERS} <= IMAGE_EXTENSIONS


@pytest.mark.parametrize("name", sorted(ALL_GOOD_BUILDERS))
def test_good_file_inspects_with_oriented_size_and_hash(corpus: Path, name: str) -> None:
    data = (corpus / name).read_bytes()
    info = inspect_image(data, source=name)
    assert (info.width, info.height) == GOOD_SIZES[name]
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.format in SUPPORTED_FORMATS


@pytest.mark.parametrize("name", sorted(ALL_GOOD_BUILDERS))
def test_good_file_opens_as_8bit_rgb_of_the_same_size(corpus: Path, name: str) -> None:
    image = open_rgb(corpus / name)
    assert image.mode == "RGB"
    assert image.size == GOOD_SIZES[name]
    assert np.asarray(image).dtype == np.uint8


@pytest.mark.parametrize("name", sorted(BAD_BUILDERS))
def test_bad_file_raises_image_error_naming_file_and_reason(corpus: Path, name: str) -> None:
    reason = BAD_BUILDERS[name][1]
    path = corpus / name
    with pytest.raises(ImageError) as inspected:
        inspect_image(path.read_bytes(), source=str(path))
    assert reason in inspected.value.reason
    assert name in str(inspected.value) and inspected.value.source == str(path)
    with pytest.raises(ImageError, match=name) as opened:
        open_rgb(path)
    assert reason in opened.value.reason


def test_exif_orientation_6_swaps_and_rotates_pixels(corpus: Path) -> None:
    info = inspect_image((corpus / "rotated_exif6.jpg").read_bytes(), source="r.jpg")
    assert (info.width, info.height) == (32, 64)
    pixels = np.asarray(open_rgb(corpus / "rotated_exif6.jpg")).astype(int)
    stored = gradient(64, 32).astype(int)  # orientation 6 = rotate 90 degrees clockwise to view
    assert np.abs(pixels - np.rot90(stored, k=-1)).mean() < 6


def test_sixteen_bit_png_scales_instead_of_clipping(corpus: Path) -> None:
    info = inspect_image((corpus / "gray16.png").read_bytes(), source="gray16.png")
    assert info.mode.startswith("I")
    pixels = np.asarray(open_rgb(corpus / "gray16.png")).astype(float)
    expected = gray16().astype(float) / 257
    assert abs(pixels.mean() - expected.mean()) < 1.0
    assert np.abs(pixels[..., 0] - expected).max() <= 1.0
    assert 0 < pixels.min() and pixels.max() < 255  # neither clipped white nor black


def test_alpha_is_composited_onto_white(corpus: Path) -> None:
    pixels = np.asarray(open_rgb(corpus / "rgba.png"))
    assert (pixels[:, :4] == (200, 0, 0)).all()  # opaque half keeps its colour
    assert (pixels[:, 4:] == 255).all()  # transparent half is white, not black


def test_palette_transparency_is_composited_onto_white(corpus: Path) -> None:
    pixels = np.asarray(open_rgb(corpus / "palette_transparent.gif"))
    assert (pixels[:, :6] == (255, 0, 0)).all()
    assert (pixels[:, 6:] == 255).all()


def test_animated_gif_uses_the_first_frame(corpus: Path) -> None:
    pixels = np.asarray(open_rgb(corpus / "animated.gif"))
    assert (pixels == GIF_FIRST_COLOUR).all()


def test_cmyk_and_grayscale_keep_their_content(corpus: Path) -> None:
    expected = gradient(24, 16).astype(int)
    cmyk = np.asarray(open_rgb(corpus / "cmyk.jpg")).astype(int)
    assert np.abs(cmyk - expected).mean() < 8
    gray = np.asarray(open_rgb(corpus / "gray.jpg")).astype(int)
    assert (gray[..., 0] == gray[..., 1]).all() and gray.std() > 30


def test_own_pixel_cap_is_checked_from_the_header_before_decoding() -> None:
    data = bomb_png(9_000)  # 81 M pixels: under Pillow's own limits
    header_only = data[: data.index(b"IDAT") + 100]  # decoding this would fail as truncated
    with pytest.raises(ImageError) as raised:
        inspect_image(header_only, source="big.png", max_pixels=50_000_000)
    assert raised.value.reason == (
        "image too large: 9000x9000 = 81,000,000 pixels exceeds the cap of 50,000,000 (decompression bomb protection)"
    )


def test_pillow_bomb_limit_surfaces_as_image_error_with_the_count() -> None:
    with pytest.raises(ImageError, match=r"900,000,000 pixels") as raised:
        inspect_image(bomb_png(), source="bomb.png", max_pixels=10**12)
    assert raised.value.reason.startswith("image too large")


def test_pixel_cap_is_configurable_per_call(corpus: Path) -> None:
    data = (corpus / "photo.jpg").read_bytes()
    assert inspect_image(data, source="p.jpg", max_pixels=64 * 48).width == 64
    with pytest.raises(ImageError, match="64x48 = 3,072 pixels exceeds the cap of 3,071"):
        inspect_image(data, source="p.jpg", max_pixels=64 * 48 - 1)
    with pytest.raises(ImageError, match="exceeds the cap"):
        open_rgb(corpus / "photo.jpg", max_pixels=100)


def test_zero_size_header_is_rejected() -> None:
    header = struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0)
    body = b"IHDR" + header
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body))
    with pytest.raises(ImageError, match="zero.png"):
        inspect_image(data, source="zero.png")


def test_unreadable_paths_raise_image_error_naming_them(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"
    with pytest.raises(ImageError, match="missing.jpg: no such file or directory"):
        open_rgb(missing)
    with pytest.raises(ImageError, match="is a directory"):
        open_rgb(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_names_the_file(corpus: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked.jpg"
    locked.write_bytes((corpus / "photo.jpg").read_bytes())
    locked.chmod(0)
    with pytest.raises(ImageError, match="locked.jpg: permission denied"):
        open_rgb(locked)


@pytest.mark.parametrize(
    ("mode", "array", "expected"),
    [
        ("I", np.array([[0, 65535]], dtype=np.int32), [0, 255]),
        ("I", np.array([[-10, 90]], dtype=np.int32), [0, 255]),  # outside 16 bits: by range
        ("F", np.array([[0.0, 0.5, 1.0]], dtype=np.float32), [0, 128, 255]),
        ("F", np.array([[100.0, 300.0]], dtype=np.float32), [0, 255]),
        ("F", np.array([[7.0, 7.0]], dtype=np.float32), [0, 0]),  # flat, out of range
    ],
)
def test_high_depth_modes_map_to_8bit(mode: str, array: np.ndarray, expected: list[int]) -> None:
    image = Image.fromarray(array)
    assert image.mode == mode
    result = np.asarray(to_rgb(image))
    assert result.shape == (*array.shape, 3)
    assert result[0, :, 0].tolist() == expected


def test_to_rgb_leaves_rgb_alone_and_converts_la() -> None:
    rgb = Image.new("RGB", (2, 2), (1, 2, 3))
    assert to_rgb(rgb) is rgb
    la = Image.new("LA", (2, 1), (0, 0))
    assert np.asarray(to_rgb(la)).tolist() == [[[255, 255, 255], [255, 255, 255]]]


def test_thumbnail_is_a_small_jpeg(corpus: Path) -> None:
    data = thumbnail_bytes(corpus / "rotated_exif6.jpg", size=16)
    thumb = Image.open(io.BytesIO(data))
    assert thumb.format == "JPEG" and thumb.size == (8, 16)
    with pytest.raises(InvalidInput, match="thumbnail size"):
        thumbnail_bytes(corpus / "photo.jpg", size=0)
    with pytest.raises(ImageError, match="notes.jpg"):
        thumbnail_bytes(corpus / "notes.jpg")


def test_open_rgb_is_picklable_for_dataloader_workers() -> None:
    assert pickle.loads(pickle.dumps(open_rgb)) is open_rgb


def test_png_saved_from_rgb_roundtrips_exactly(corpus: Path) -> None:
    assert (np.asarray(open_rgb(corpus / "photo.png")) == gradient(60, 40)).all()


def test_cifar_images_all_inspect(cifar_dir: Path) -> None:
    files = sorted(cifar_dir.glob("*/*.jpg"))
    assert len(files) == 1000
    for path in files:
        info = inspect_image(path.read_bytes(), source=str(path))
        assert (info.width, info.height, info.format) == (32, 32, "JPEG")
    assert open_rgb(files[0]).size == (32, 32)
