"""Is there enough compressed data for the pixels a header declares? Checked before decoding.

libjpeg fills missing scan data with grey and Pillow mutes its warning; zlib stops quietly at the
end of a short PNG stream. So a 19 KB file declaring 9999x9999 decodes "fine" into 100 M grey
pixels. The floors below are sound lower bounds, so no real image, however flat, is refused:

* JPEG with Huffman coding (baseline, extended, progressive): every 8x8 block costs at least the
  shortest DC code, plus the shortest AC code (an end-of-block) in a sequential scan. The file's
  own Huffman tables give those lengths. Arithmetic-coded and lossless JPEGs have no such floor.
* PNG: deflate cannot beat 1032:1 (a 258-byte match in 2 bits), and the inflated stream must
  hold every row (checked exactly by inflating it, in bounded chunks, before Pillow decodes).
* GIF, WebP, TIFF, BMP, AVIF, HEIC: their decoders report short data themselves (tests prove it),
  and their best compression (WebP lossless: 528 bytes for a flat 12 MP image) has no useful floor.
"""

from __future__ import annotations

import math
import mmap
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from core.errors import ImageError

Buffer = bytes | memoryview | mmap.mmap
DEFLATE_MAX_RATIO = 1032
_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_HUFFMAN_SOF = frozenset({0xC0, 0xC1, 0xC2})
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_CHUNK = 1 << 20


def check_plausible(buf: Buffer, *, fmt: str, source: str) -> None:
    """Raise ImageError when `buf` (a whole file) cannot hold the image its header declares."""
    reason = _jpeg_reason(buf) if fmt == "JPEG" else _png_reason(buf) if fmt == "PNG" else None
    if reason is not None:
        raise ImageError(source, reason)


@dataclass(frozen=True)
class _Frame:
    marker: int
    width: int
    height: int
    components: dict[int, tuple[int, int]]  # component id -> (h, v) sampling

    def blocks(self, ids: list[int]) -> dict[int, int]:
        """8x8 blocks of each component in a scan over `ids` (interleaved when several)."""
        hmax = max(h for h, _ in self.components.values())
        vmax = max(v for _, v in self.components.values())
        if len(ids) > 1:
            mcus = math.ceil(self.width / (8 * hmax)) * math.ceil(self.height / (8 * vmax))
            return {c: mcus * self.components[c][0] * self.components[c][1] for c in ids}
        h, v = self.components[ids[0]]
        cols = math.ceil(math.ceil(self.width * h / hmax) / 8)
        return {ids[0]: cols * math.ceil(math.ceil(self.height * v / vmax) / 8)}


def _jpeg_reason(buf: Buffer) -> str | None:
    try:
        short = _jpeg_shortfall(buf)
    except (struct.error, IndexError, ValueError, KeyError, ZeroDivisionError):
        return None  # malformed headers are the decoder's to report
    if short is None:
        return None
    (found, needed), frame = short
    return (f"implausibly small file: image data ends early: {found:,} bytes of scan data cannot code the "
            f"{frame.width}x{frame.height} pixels the header declares (at least {needed:,} needed)")  # fmt: skip


def _jpeg_shortfall(buf: Buffer) -> tuple[tuple[int, int], _Frame] | None:
    frame: _Frame | None = None
    shortest: dict[tuple[int, int], int] = {}
    at = 2
    while at + 4 <= len(buf) and buf[at] == 0xFF:
        marker = buf[at + 1]
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            at += 1 if marker == 0xFF else 2
            continue
        if marker == 0xD9:
            return None
        length = struct.unpack_from(">H", buf, at + 2)[0]
        body = bytes(buf[at + 4 : at + 2 + length])
        at += 2 + length
        if marker in _SOF_MARKERS:
            frame = _parse_frame(marker, body)
        elif marker == 0xC4:
            _shortest_codes(body, shortest)
        elif marker == 0xDA:
            found = _ENTROPY_END.search(buf, at)  # type: ignore[call-overload]
            end = found.start() if found else len(buf)
            needed = _scan_bits(frame, body, shortest)
            if (end - at) * 8 < needed and frame is not None:
                return (end - at, math.ceil(needed / 8)), frame
            at = end
    return None


def _parse_frame(marker: int, body: bytes) -> _Frame | None:
    height, width, count = struct.unpack_from(">HHB", body, 1)
    components = {body[6 + 3 * i]: (body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15) for i in range(count)}
    if width == 0 or height == 0 or any(h == 0 or v == 0 for h, v in components.values()):
        return None
    return _Frame(marker, width, height, components)


def _shortest_codes(body: bytes, shortest: dict[tuple[int, int], int]) -> None:
    """Record the shortest code length of each Huffman table defined in a DHT segment."""
    at = 0
    while at + 17 <= len(body):
        counts = body[at + 1 : at + 17]
        lengths = [i + 1 for i, count in enumerate(counts) if count]
        if lengths:
            shortest[(body[at] >> 4, body[at] & 15)] = lengths[0]
        at += 17 + sum(counts)


def _scan_bits(frame: _Frame | None, body: bytes, shortest: dict[tuple[int, int], int]) -> int:
    """The fewest bits a valid scan with this header can take (0 where no floor is known)."""
    if frame is None or frame.marker not in _HUFFMAN_SOF:
        return 0
    count = body[0]
    tables = {body[1 + 2 * i]: body[2 + 2 * i] for i in range(count)}
    start, _, approx = body[1 + 2 * count], body[2 + 2 * count], body[3 + 2 * count]
    progressive = frame.marker == 0xC2
    if (progressive and (start != 0 or approx >> 4)) or not set(tables) <= set(frame.components):
        return 0
    blocks = frame.blocks(list(tables))
    per_block = {c: shortest.get((0, t >> 4), 1) + (0 if progressive else shortest.get((1, t & 15), 1))
                 for c, t in tables.items()}  # fmt: skip
    return sum(blocks[c] * per_block[c] for c in tables)


def _png_reason(buf: Buffer) -> str | None:
    try:
        header, idat = _png_chunks(buf)
    except (struct.error, IndexError, ValueError, KeyError):
        return None
    if header is None or not idat:
        return None
    width, height, raw = header
    compressed = sum(end - start for start, end in idat)
    floor = raw // DEFLATE_MAX_RATIO
    if compressed * DEFLATE_MAX_RATIO < raw:
        return (f"implausibly small file: {compressed:,} bytes of compressed pixel data cannot hold the "
                f"{width}x{height} pixels the header declares (deflate needs at least {floor:,})")  # fmt: skip
    inflated = _inflated_size(buf, idat, limit=raw)
    if inflated is not None and inflated < raw:
        return (f"truncated or corrupt image data: pixel data ends early, after {inflated:,} of the {raw:,} "
                f"bytes a {width}x{height} image needs")  # fmt: skip
    return None


def _png_chunks(buf: Buffer) -> tuple[tuple[int, int, int] | None, list[tuple[int, int]]]:
    """((width, height, raw bytes) from IHDR, [(start, end) of each IDAT payload])."""
    header, idat, at = None, [], 8
    while at + 8 <= len(buf):
        length, kind = struct.unpack_from(">I4s", buf, at)
        start, end = at + 8, min(at + 8 + length, len(buf))
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", buf, start)
            bits = depth * _PNG_CHANNELS[colour]
            header = (width, height, _png_raw_size(width, height, bits=bits, interlaced=interlace == 1))
        elif kind == b"IDAT":
            idat.append((start, end))
        elif kind == b"IEND":
            break
        at = start + length + 4
    return header, idat


def _png_raw_size(width: int, height: int, *, bits: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines (one filter byte per row) that decode to the whole image."""
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        cols, rows = max(0, math.ceil((width - x0) / dx)), max(0, math.ceil((height - y0) / dy))
        if cols and rows:
            total += rows * (1 + math.ceil(cols * bits / 8))
    return total


def _inflated_size(buf: Buffer, idat: list[tuple[int, int]], *, limit: int) -> int | None:
    """Bytes the IDAT stream inflates to, counted in bounded chunks up to `limit`; None if corrupt."""
    decoder, total = zlib.decompressobj(), 0
    try:
        for piece in _pieces(buf, idat):
            while piece and total < limit:
                total += len(decoder.decompress(piece, _INFLATE_CHUNK))
                piece = decoder.unconsumed_tail
            if total >= limit or decoder.eof:
                return total
        return total + len(decoder.flush())
    except zlib.error:
        return None


def _pieces(buf: Buffer, spans: list[tuple[int, int]]) -> Iterator[bytes]:
    for start, end in spans:
        for at in range(start, end, _INFLATE_CHUNK):
            yield bytes(buf[at : min(at + _INFLATE_CHUNK, end)])
