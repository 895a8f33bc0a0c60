"""A one-pass, streaming reader for zip archives from untrusted sources.

``zipfile.ZipFile`` re-parses the whole central directory every time an archive is opened, so
opening it once per entry made imports quadratic, and it refuses a whole archive for one entry
whose name is flagged UTF-8 but is not. Here the central directory is read once into small
frozen :class:`ZipEntry` records; each entry is later streamed straight from its offset with a
fresh file handle (thread-safe, constant cost), decompressed in bounded chunks, never past its
declared size, and its CRC checked at the end. Any malformation is an :class:`ImageError` naming
the entry (or archive) with a reason.
"""

from __future__ import annotations

import bz2
import struct
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.errors import ImageError
from core.io.names import decode_member_name

CHUNK = 256 * 1024
_EOCD = struct.Struct("<4sHHHHIIH")
_EOCD64_LOCATOR = struct.Struct("<4sIQI")
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")
_CENTRAL = struct.Struct("<4sBBBBHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_MAX_COMMENT = 65_535
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAGS = 0x1 | 0x40
_STORED, _DEFLATED, _BZIP2 = 0, 8, 12
_METHOD_NAMES = {14: "LZMA", 93: "Zstandard", 95: "XZ", 98: "PPMd", 9: "Deflate64", 99: "AES"}


@dataclass(frozen=True)
class ZipEntry:
    """One central-directory record; `name` is already safe text (see core.io.names)."""

    name: str
    flag_bits: int
    method: int
    crc: int
    compressed_size: int
    file_size: int
    header_offset: int
    external_attr: int

    def is_dir(self) -> bool:
        return self.name.endswith("/")


def read_directory(path: Path, *, source: str, max_entries: int) -> list[ZipEntry]:
    """Every entry of the archive at `path`, in directory order; ImageError for the archive."""
    try:
        with path.open("rb") as handle:
            count, size, offset = _end_record(handle, source=source)
            if count > max_entries:
                raise ImageError(source, f"archive has {count:,} entries, over the cap of {max_entries:,}; not opened")
            handle.seek(offset)
            directory = handle.read(size)
    except OSError as exc:
        raise ImageError(source, f"not a readable zip archive: {exc.strerror or exc}") from exc
    if len(directory) != size:
        raise ImageError(source, "not a readable zip archive: central directory is truncated")
    return _parse_directory(directory, count=count, source=source)


def _end_record(handle, *, source: str) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """(entries, central directory size, its offset) from the end records, zip64 included."""
    file_size = handle.seek(0, 2)
    start = max(0, file_size - _EOCD.size - _MAX_COMMENT)
    handle.seek(start)
    tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise ImageError(source, "not a readable zip archive: no end of central directory record")
    _, _, _, _, count, size, offset, _ = _EOCD.unpack_from(tail, at)
    locator_at = at - _EOCD64_LOCATOR.size
    if locator_at >= 0 and tail[locator_at : locator_at + 4] == b"PK\x06\x07":
        handle.seek(_EOCD64_LOCATOR.unpack_from(tail, locator_at)[2])
        record = handle.read(_EOCD64.size)
        if len(record) != _EOCD64.size or record[:4] != b"PK\x06\x06":
            raise ImageError(source, "not a readable zip archive: bad zip64 end record")
        _, _, _, _, _, _, _, count, size, offset = _EOCD64.unpack(record)
    if offset + size > file_size:
        raise ImageError(source, "not a readable zip archive: central directory lies past the end of the file")
    return count, size, offset


def _parse_directory(data: bytes, *, count: int, source: str) -> list[ZipEntry]:
    entries: list[ZipEntry] = []
    at = 0
    while len(entries) < count:
        if at + _CENTRAL.size > len(data) or data[at : at + 4] != b"PK\x01\x02":
            raise ImageError(source, f"not a readable zip archive: bad central directory record {len(entries) + 1}")
        fields = _CENTRAL.unpack_from(data, at)
        flags, method, crc, csize, usize = fields[5], fields[6], fields[9], fields[10], fields[11]
        name_len, extra_len, comment_len = fields[12], fields[13], fields[14]
        start = at + _CENTRAL.size
        raw_name = data[start : start + name_len]
        extra = data[start + name_len : start + name_len + extra_len]
        csize, usize, offset = _zip64_sizes(extra, csize=csize, usize=usize, offset=fields[18])
        entries.append(ZipEntry(decode_member_name(raw_name, utf8_flag=bool(flags & _UTF8_FLAG)),
                                flags, method, crc, csize, usize, offset, fields[17]))  # fmt: skip
        at = start + name_len + extra_len + comment_len
    return entries


def _zip64_sizes(extra: bytes, *, csize: int, usize: int, offset: int) -> tuple[int, int, int]:
    """Replace the 0xFFFFFFFF placeholders by the zip64 extra field's values, in its order."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4 : at + 4 + length]
        if kind == 0x0001:
            values = [struct.unpack_from("<Q", body, i)[0] for i in range(0, len(body) - 7, 8)]
            usize = values.pop(0) if usize == 0xFFFFFFFF and values else usize
            csize = values.pop(0) if csize == 0xFFFFFFFF and values else csize
            offset = values.pop(0) if offset == 0xFFFFFFFF and values else offset
        at += 4 + length
    return csize, usize, offset


def unsupported_reason(entry: ZipEntry) -> str | None:
    """Why this entry cannot be read at all (encrypted, unknown compression), or None."""
    if entry.flag_bits & _ENCRYPTED_FLAGS or entry.method == 99:
        return "encrypted entry in archive (password protected)"
    if entry.method not in (_STORED, _DEFLATED, _BZIP2):
        name = _METHOD_NAMES.get(entry.method, f"method {entry.method}")
        return f"unsupported compression in archive: {name} (supported: stored, deflate, bzip2)"
    return None


def iter_entry(path: Path, entry: ZipEntry, *, source: str, max_bytes: int) -> Generator[bytes, None, None]:
    """The entry's bytes in chunks of at most CHUNK; ImageError on any inconsistency."""
    reason = unsupported_reason(entry)
    if reason is not None:
        raise ImageError(source, reason)
    limit = min(entry.file_size, max_bytes)
    if entry.file_size > max_bytes:
        raise ImageError(source, f"entry too large: declares {entry.file_size:,} bytes, over the cap of {max_bytes:,}")
    try:
        with path.open("rb") as handle:
            yield from _checked(_inflate(_raw_chunks(handle, entry, source=source), entry), entry,
                                source=source, limit=limit)  # fmt: skip
    except (OSError, zlib.error, EOFError, ValueError) as exc:
        raise ImageError(source, f"corrupt or unreadable archive entry: {exc}") from exc


def _raw_chunks(handle, entry: ZipEntry, *, source: str) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    handle.seek(entry.header_offset)
    header = handle.read(_LOCAL.size)
    if len(header) != _LOCAL.size or header[:4] != b"PK\x03\x04":
        raise ImageError(source, "corrupt or unreadable archive entry: bad local header")
    fields = _LOCAL.unpack(header)
    handle.seek(entry.header_offset + _LOCAL.size + fields[9] + fields[10])
    left = entry.compressed_size
    while left > 0:
        chunk = handle.read(min(CHUNK, left))
        if not chunk:
            raise ImageError(source, "corrupt or unreadable archive entry: data ends before its declared size")
        left -= len(chunk)
        yield chunk


def _inflate(chunks: Iterator[bytes], entry: ZipEntry) -> Iterator[bytes]:
    """Decompressed output in bounded pieces (a 1 KB chunk of zeros cannot become 1 GB at once)."""
    if entry.method == _STORED:
        yield from chunks
    elif entry.method == _DEFLATED:
        decoder = zlib.decompressobj(-15)
        for chunk in chunks:
            pending = chunk
            while pending:
                yield decoder.decompress(pending, CHUNK)
                pending = decoder.unconsumed_tail
        yield decoder.flush()
    else:
        yield from _bunzip(chunks)


def _bunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    decoder = bz2.BZ2Decompressor()
    for chunk in chunks:
        if decoder.eof:
            return
        yield decoder.decompress(chunk, CHUNK)
        while not decoder.needs_input and not decoder.eof:
            yield decoder.decompress(b"", CHUNK)


def _checked(chunks: Iterator[bytes], entry: ZipEntry, *, source: str, limit: int) -> Iterator[bytes]:
    crc, total = 0, 0
    for chunk in chunks:
        if not chunk:
            continue
        total += len(chunk)
        if total > limit:
            raise ImageError(
                source, f"corrupt or unreadable archive entry: more data than the {limit:,} bytes declared"
            )
        crc = zlib.crc32(chunk, crc)
        yield chunk
    if total != entry.file_size:
        raise ImageError(source, f"corrupt or unreadable archive entry: {total:,} bytes, {entry.file_size:,} declared")
    if crc != entry.crc:
        raise ImageError(source, "corrupt or unreadable archive entry: CRC check failed")
