"""Decoding and validation of untrusted image files, and their conversion to 8-bit RGB.

Everything here is a plain module-level function without shared state, so it can run in
DataLoader worker processes and threads. Pillow's global ``Image.MAX_IMAGE_PIXELS`` is never
changed: our own cap (``max_pixels``) is checked from the header before decoding, and Pillow's own
hard limit (twice its ``MAX_IMAGE_PIXELS``, about 179 M pixels by default) still applies on top.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import ImageError, InvalidInput
from core.io.plausible import check_plausible
from core.io.sniff import BOMB_ERRORS, CONVERT, bomb_reason, is_heif, refuse, register_heif

DEFAULT_MAX_PIXELS = 100_000_000
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif", ".heic", ".heif"}
)
# AVIF through Pillow's own plugin (Pillow >= 11.2 wheels); HEIC through pillow-heif when installed.
SUPPORTED_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "AVIF", "HEIF"})

_FORMAT_ALIASES = {"MPO": "JPEG"}  # multi-picture JPEG (phones); its first frame is a JPEG
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# What Pillow's decoders raise on malformed input (its fuzzers accept the same families).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    struct.error,
    zlib.error,
)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_HIGH_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_THUMBNAIL_QUALITY = 85
HEAD_SNIFF = 4096


@dataclass(frozen=True)
class ImageInfo:
    """What the import keeps about one valid image file."""

    sha256: str
    width: int  # after EXIF orientation is applied
    height: int
    format: str  # PIL format name (MPO reported as JPEG)
    mode: str  # PIL mode of the file, before any conversion


def inspect_image(data: bytes, *, source: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Validate `data` completely (decoding the first frame) and describe it; raise ImageError."""
    image = _decode(data, source=source, max_pixels=max_pixels)
    return _describe(image, sha256=hashlib.sha256(data).hexdigest())


def inspect_file(path: str | Path, *, source: str, sha256: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """`inspect_image` for a file on disk, mapped rather than read, so its bytes never sit in memory.

    `sha256` is the digest the caller computed while streaming the file in.
    """
    try:
        with open(path, "rb") as handle:
            if not Path(path).stat().st_size:
                raise ImageError(source, "empty file (0 bytes)")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                image = _decode(view, source=source, max_pixels=max_pixels, fp=handle)
                return _describe(image, sha256=sha256)
    except OSError as exc:
        raise ImageError(source, f"cannot read file: {exc.strerror or exc}") from exc


def _describe(image: Image.Image, *, sha256: str) -> ImageInfo:
    width, height = _oriented_size(image)
    return ImageInfo(sha256=sha256, width=width, height=height, format=_format_name(image), mode=image.mode)


def open_rgb(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read, validate and decode `path`: first frame, EXIF orientation applied, 8-bit RGB."""
    source = str(path)
    image = _decode(_read_file(path, source=source), source=source, max_pixels=max_pixels)
    method = _TRANSPOSE.get(_orientation(image))
    if method is not None:
        image = image.transpose(method)
    try:
        return to_rgb(image)
    except _DECODE_ERRORS as exc:
        raise ImageError(source, f"cannot convert mode {image.mode!r} to RGB: {exc}") from exc


CENTRE_BAND_RATIO = 8.0  # the long side kept by centre_band, in short sides


def centre_band(image: Image.Image, *, ratio: float = CENTRE_BAND_RATIO) -> Image.Image:
    """`image` with its long side cut, about its centre, to `ratio` x its short side (unchanged when
    it is no longer: every photo up to an 8:1 panorama is preprocessed exactly as before). The
    classifiers' preprocessing (resize the short side, centre-crop a square) keeps only the centre
    square, which the cut leaves whole with room to spare for the resampling filter (only a sub-pixel
    shift of the resize's grid can differ); but a 1 x 2,000,000-pixel picture, which passes the pixel
    cap, no longer asks the resize for a 224 x 448,000,000 one (a MemoryError, or the server's memory)."""
    width, height = image.size
    short, long = min(width, height), max(width, height)
    keep = max(1, int(round(ratio * short)))
    if long <= keep:
        return image
    start = (long - keep) // 2
    box = (start, 0, start + keep, height) if width > height else (0, start, width, start + keep)
    return image.crop(box)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; alpha is composited onto white."""
    if image.mode == "RGB":
        return image
    if image.mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(_to_uint8(np.asarray(image))).convert("RGB")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def thumbnail_bytes(path: str | Path, *, size: int = 256, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """A JPEG thumbnail (longest side <= `size`) of `open_rgb(path)`, for the web grid."""
    if size < 1:
        raise InvalidInput(f"thumbnail size must be a positive number of pixels, got {size}")
    image = open_rgb(path, max_pixels=max_pixels)
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=_THUMBNAIL_QUALITY)
    return buffer.getvalue()


def _read_file(path: str | Path, *, source: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise ImageError(source, "no such file or directory") from exc
    except PermissionError as exc:
        raise ImageError(source, "permission denied") from exc
    except IsADirectoryError as exc:
        raise ImageError(source, "is a directory, not a file") from exc
    except OSError as exc:
        raise ImageError(source, f"cannot read file: {exc.strerror or exc}") from exc


def _decode(data: bytes | mmap.mmap, *, source: str, max_pixels: int, fp: BinaryIO | None = None) -> Image.Image:
    """Sniff, open, check format, pixel count and data size from the header, then decode frame 1."""
    if not len(data):
        raise ImageError(source, "empty file (0 bytes)")
    head = bytes(data[:HEAD_SNIFF])
    refuse(source, head, heif_available=is_heif(head) and register_heif())
    image = _open(fp or io.BytesIO(data), source=source)
    fmt = _format_name(image)
    if fmt not in SUPPORTED_FORMATS:
        supported = ", ".join(sorted(SUPPORTED_FORMATS))
        raise ImageError(source, f"unsupported format {fmt!r} (supported: {supported}); {CONVERT}")
    _check_pixels(image.size, source=source, max_pixels=max_pixels)
    check_plausible(data, fmt=fmt, source=source)
    try:
        image.load()
    except BOMB_ERRORS as exc:
        raise ImageError(source, bomb_reason(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(source, f"truncated or corrupt image data: {exc}") from exc
    return image


def _open(fp: BinaryIO, *, source: str) -> Image.Image:
    try:
        return Image.open(fp)
    except UnidentifiedImageError as exc:
        raise ImageError(source, "not an image (unrecognised format)") from exc
    except BOMB_ERRORS as exc:
        raise ImageError(source, bomb_reason(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(source, f"truncated or corrupt image data: {exc}") from exc


def _check_pixels(size: tuple[int, int], *, source: str, max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(source, f"truncated or corrupt image data: size {width}x{height}")
    pixels = width * height
    if pixels > max_pixels:
        raise ImageError(
            source,
            f"image too large: {width}x{height} = {pixels:,} pixels exceeds the cap of "
            f"{max_pixels:,} (decompression bomb protection)",
        )


def _format_name(image: Image.Image) -> str:
    fmt = image.format or "unknown"
    return _FORMAT_ALIASES.get(fmt, fmt)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8); 1 where absent or unreadable (bad EXIF is not fatal)."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    width, height = image.size
    return (height, width) if _orientation(image) in (5, 6, 7, 8) else (width, height)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """16-bit integers scale by 1/257; floats in [0, 1] by 255; anything else by its range."""
    values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if values.size == 0:
        return values.astype(np.uint8)
    low, high = float(values.min()), float(values.max())
    if array.dtype.kind in "iu" and low >= 0 and high <= 65535:
        scaled = values / 257.0
    elif array.dtype.kind == "f" and low >= 0 and high <= 1:
        scaled = values * 255.0
    elif high > low:
        scaled = (values - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(values)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
