"""What a file is, from its first bytes, before any more of it is read.

An import reads at most :data:`HEAD_BYTES` of each candidate first. Things that are not images we
decode (archives, documents, vector images, formats without a decoder here) are refused with a
reason that says what to do, so a zip entry of 500 MB of zeros costs one small read, not 500 MB.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from PIL import Image

from core.errors import ImageError

HEAD_BYTES = 64 * 1024
CONVERT = "convert to JPEG/PNG"
ARCHIVE_FORMATS: dict[bytes, str] = {
    b"PK\x03\x04": "zip", b"PK\x05\x06": "zip", b"\x1f\x8b": "gzip", b"7z\xbc\xaf\x27\x1c": "7z",
    b"Rar!\x1a\x07": "rar", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd",
}  # fmt: skip
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_SIGNATURES = (
    b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+",
)  # fmt: skip
BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_OPEN_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, ZeroDivisionError,
                ArithmeticError, AttributeError, RuntimeError)  # fmt: skip
_SVG = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]", re.S | re.I)


def sniff_refusal(head: bytes, *, heif_available: bool) -> str | None:
    """The reason a file starting with `head` is refused before decoding, or None to go on."""
    if not head:
        return "empty file (0 bytes)"
    for check in _CHECKS:
        reason = check(head, heif_available)
        if reason is not None:
            return reason
    return None


def refuse(source: str, head: bytes, *, heif_available: bool) -> None:
    """Raise ImageError naming `source` when `sniff_refusal` finds a reason."""
    reason = sniff_refusal(head, heif_available=heif_available)
    if reason is not None:
        raise ImageError(source, reason)


def preflight(source: str, head: bytes, *, max_pixels: int) -> None:
    """Refuse a file from its first bytes: not an image we decode, or too many pixels declared.

    A file with one of our formats' signatures whose header does not fit in `head` passes; the
    full decode judges it later.
    """
    refuse(source, head, heif_available=is_heif(head) and register_heif())
    if not has_supported_signature(head):
        raise ImageError(source, _foreign_reason(head))
    size = _header_size(head, source=source)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageError(
            source,
            f"image too large: {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels exceeds the cap of "
            f"{max_pixels:,} (decompression bomb protection)",
        )


def has_supported_signature(head: bytes) -> bool:
    """True when `head` starts like a JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF or HEIC file."""
    riff_webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return head.startswith(_SIGNATURES) or riff_webp or is_avif(head) or is_heif(head)


def register_heif() -> bool:
    """Teach Pillow HEIC through pillow-heif (idempotent), only once a HEIC file is met."""
    try:
        import pillow_heif  # type: ignore[import-not-found]
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _foreign_reason(head: bytes) -> str:
    """Name the format Pillow sees in `head` (ICO, TGA, PSD...), or say it is not an image."""
    try:
        with Image.open(io.BytesIO(head)) as image:
            return f"unsupported format {image.format!r}; {CONVERT}"
    except (*_OPEN_ERRORS, *BOMB_ERRORS):
        return "not an image (unrecognised format)"


def _header_size(head: bytes, *, source: str) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(head)) as image:
            return image.size
    except BOMB_ERRORS as exc:
        raise ImageError(source, bomb_reason(exc)) from exc
    except _OPEN_ERRORS:
        return None  # the header is longer than `head`, or broken: the decode will say which


def bomb_reason(exc: Exception) -> str:
    """Pillow's own limit fired first; restate its figures in our words."""
    found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
    if found is None:
        return f"image too large: {exc} (decompression bomb protection)"
    pixels, limit = (int(group) for group in found.groups())
    return f"image too large: {pixels:,} pixels exceeds Pillow's limit of {limit:,} (decompression bomb protection)"


def is_heif(head: bytes) -> bool:
    return _ftyp_brands(head) & _HEIF_BRANDS != set() and not is_avif(head)


def is_avif(head: bytes) -> bool:
    return _ftyp_brands(head) & _AVIF_BRANDS != set()


def _ftyp_brands(head: bytes) -> set[bytes]:
    """Major and compatible brands of an ISO-BMFF `ftyp` box (HEIC, AVIF), empty if none."""
    if head[4:8] != b"ftyp" or len(head) < 12:
        return set()
    size = min(int.from_bytes(head[:4], "big"), len(head), 256)
    return {head[8:12]} | {head[i : i + 4] for i in range(16, size - 3, 4)}


def _archive(head: bytes, _heif: bool) -> str | None:
    for magic, kind in ARCHIVE_FORMATS.items():
        if head.startswith(magic):
            return f"nested archive ({kind}): not opened"
    if head[257:262] == b"ustar":
        return "nested archive (tar): not opened"
    return None


def _heif_or_avif(head: bytes, heif_available: bool) -> str | None:
    if is_avif(head) or not is_heif(head) or heif_available:
        return None
    return f"unsupported format 'HEIC': no HEIF decoder installed (pip install pillow-heif); {CONVERT}"


def _document(head: bytes, _heif: bool) -> str | None:
    if _SVG.match(head[:4096]):
        return f"unsupported format 'SVG' (vector image); {CONVERT}"
    if head.startswith(b"%PDF"):
        return f"unsupported format 'PDF' (document); {CONVERT}"
    return None


_CHECKS: tuple[Callable[[bytes, bool], str | None], ...] = (_archive, _heif_or_avif, _document)
