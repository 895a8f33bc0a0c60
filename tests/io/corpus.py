"""Builds the good and malformed image corpus into a tmp dir at test time (no binaries committed)."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image

BOMB_SIDE = 30_000
# (width, height) after EXIF orientation, for every good file of build_corpus.
GOOD_SIZES = MappingProxyType(
    {
        "photo.jpg": (64, 48),
        "photo.png": (60, 40),
        "photo.webp": (50, 30),
        "photo.bmp": (33, 21),
        "photo.tiff": (40, 24),
        "photo.avif": (36, 20),
        "photo.heic": (38, 22),
        "animated.gif": (20, 10),
        "rotated_exif6.jpg": (32, 64),
        "gray.jpg": (40, 30),
        "bilevel.png": (17, 9),
        "cmyk.jpg": (24, 16),
        "gray16.png": (64, 32),
        "rgba.png": (8, 8),
        "palette.png": (30, 20),
        "palette_transparent.gif": (12, 12),
    }
)
# The first frame of animated.gif is this colour; later frames are not.
GIF_FIRST_COLOUR = (255, 0, 0)
GIF_LATER_COLOURS = ((0, 255, 0), (0, 0, 255))


def gradient(width: int, height: int) -> np.ndarray:
    """A smooth RGB test pattern (uint8, height x width x 3)."""
    y, x = np.mgrid[0:height, 0:width]
    red = x * 255 // max(width - 1, 1)
    green = y * 255 // max(height - 1, 1)
    blue = (x + y) * 255 // max(width + height - 2, 1)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gray16() -> np.ndarray:
    """A 16-bit ramp over most of the range, so an 8-bit clip would show."""
    ramp = np.linspace(1000, 64000, 64 * 32).reshape(32, 64)
    return ramp.astype(np.uint16)


def _rgb(size: tuple[int, int]) -> Image.Image:
    return Image.fromarray(gradient(*size))


def _heic(image: Image.Image) -> bytes:
    from core.io.sniff import register_heif

    assert register_heif(), "pillow-heif is a dependency: pip install pillow-heif"
    return encode(image, "HEIF", quality=90)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(_rgb((64, 32)), "JPEG", exif=exif.tobytes())


def _animated_gif() -> bytes:
    colours = (GIF_FIRST_COLOUR, *GIF_LATER_COLOURS)
    frames = [Image.new("RGB", (20, 10), colour) for colour in colours]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _rgba() -> bytes:
    array = np.zeros((8, 8, 4), dtype=np.uint8)
    array[..., 0] = 200  # red
    array[:, :4, 3] = 255  # left half opaque, right half fully transparent
    return encode(Image.fromarray(array), "PNG")


def _palette_transparent() -> bytes:
    image = Image.new("P", (12, 12), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    image.paste(1, (0, 0, 6, 12))
    return encode(image, "GIF", transparency=0)


GOOD_BUILDERS: dict[str, Callable[[], bytes]] = {
    "photo.jpg": lambda: encode(_rgb((64, 48)), "JPEG", quality=90),
    "photo.png": lambda: encode(_rgb((60, 40)), "PNG"),
    "photo.webp": lambda: encode(_rgb((50, 30)), "WEBP", quality=90),
    "photo.bmp": lambda: encode(_rgb((33, 21)), "BMP"),
    "photo.tiff": lambda: encode(_rgb((40, 24)), "TIFF"),
    "animated.gif": _animated_gif,
    "rotated_exif6.jpg": _exif_rotated,
    "gray.jpg": lambda: encode(_rgb((40, 30)).convert("L"), "JPEG"),
    "bilevel.png": lambda: encode(_rgb((17, 9)).convert("1"), "PNG"),
    "cmyk.jpg": lambda: encode(_rgb((24, 16)).convert("CMYK"), "JPEG"),
    "gray16.png": lambda: encode(Image.fromarray(gray16()), "PNG"),
    "rgba.png": _rgba,
    "palette.png": lambda: encode(_rgb((30, 20)).convert("P"), "PNG"),
    "palette_transparent.gif": _palette_transparent,
}


# AVIF (Pillow's own plugin) and HEIC (pillow-heif): kept out of build_corpus's default set, whose
# callers (tests/test_import_service.py) count the classic formats by file suffix.
MODERN_BUILDERS: dict[str, Callable[[], bytes]] = {
    "photo.avif": lambda: encode(_rgb((36, 20)), "AVIF", quality=90),
    "photo.heic": lambda: _heic(_rgb((38, 22))),
}
ALL_GOOD_BUILDERS: dict[str, Callable[[], bytes]] = {**GOOD_BUILDERS, **MODERN_BUILDERS}


def noisy_jpeg() -> bytes:
    """A JPEG big enough that cutting it in half removes real scan data."""
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    return encode(Image.fromarray(noise), "JPEG", quality=95)


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A valid 1-bit PNG of side x side zeros: a few hundred KB that would decode to ~side² bytes."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row * 1000) for _ in range(side // 1000)]
    chunks += [compressor.compress(row * (side % 1000)), compressor.flush()]
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", b"".join(chunks)),
            _png_chunk(b"IEND", b""),
        ]
    )


def _corrupt_png() -> bytes:
    """The right length, but the compressed pixel data is garbage."""
    data = bytearray(encode(Image.fromarray(gradient(64, 64)), "PNG"))
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    data[start + 2 : start + length] = b"\xff" * (length - 2)
    crc = zlib.crc32(bytes(data[start - 4 : start + length]))
    data[start + length : start + length + 4] = struct.pack(">I", crc)
    return bytes(data)


# name -> (builder, expected substring of the ImageError reason)
BAD_BUILDERS: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty.jpg": (lambda: b"", "empty file (0 bytes)"),
    "truncated.jpg": (lambda: _half(noisy_jpeg()), "truncated or corrupt image data"),
    "truncated.png": (
        lambda: _half(encode(Image.fromarray(gradient(128, 128)), "PNG")),
        "truncated or corrupt image data",
    ),
    "corrupt.png": (_corrupt_png, "truncated or corrupt image data"),
    "notes.jpg": (lambda: b"this is a text file, not a picture\n" * 20, "not an image"),
    "bomb.png": (bomb_png, "image too large"),
    "icon.png": (lambda: encode(_rgb((32, 32)), "ICO"), "unsupported format 'ICO'"),
    "targa.tga": (lambda: encode(_rgb((16, 16)), "TGA"), "unsupported format 'TGA'"),
}


def build_corpus(directory: Path, *, modern: bool = False) -> dict[str, str | None]:
    """Write every good and bad file into `directory`: file name -> expected reason (None: good).

    `modern` adds the AVIF and HEIC files of MODERN_BUILDERS.
    """
    directory.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}
    for name, build in (ALL_GOOD_BUILDERS if modern else GOOD_BUILDERS).items():
        (directory / name).write_bytes(build())
        expected[name] = None
    for name, (build, reason) in BAD_BUILDERS.items():
        (directory / name).write_bytes(build())
        expected[name] = reason
    return expected


def build_archive(path: Path, *, absolute_name: str) -> dict[str, str | None]:
    """A zip of good images and hostile entries: entry name -> expected reason (None: good).

    `absolute_name` is the absolute path used for the absolute-path entry (make it unique, so a
    test can check nothing was written there).
    """
    good = encode(_rgb((16, 12)), "PNG")
    expected: dict[str, str | None] = {
        "cats/tabby.png": None,
        "dogs/puppies/rex.png": None,
        "root.png": None,
        "../escape.jpg": "unsafe path",
        "safe/../../escape2.jpg": "unsafe path",
        absolute_name: "unsafe path",
        "C:\\evil.jpg": "unsafe path",
        "link.jpg": "symbolic link",
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in expected:
            info = zipfile.ZipInfo(name)
            if name == "link.jpg":
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, "/etc/passwd")
            else:
                archive.writestr(info, good)
        archive.writestr("cats/", b"")  # a directory entry: skipped silently
        archive.writestr("README.txt", b"not an image: read, then refused")
        archive.writestr("__MACOSX/cats/._tabby.png", b"resource fork: reported, skipped")
    return expected
