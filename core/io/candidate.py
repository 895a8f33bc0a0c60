"""One file to import (a plain file or a zip entry) and how its bytes are read, in bounded chunks."""

from __future__ import annotations

import os
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ImageError
from core.io.sniff import HEAD_BYTES, preflight
from core.io.zipread import CHUNK, ZipEntry, iter_entry

DEFAULT_MAX_ENTRY_BYTES = 512 * 2**20


@dataclass(frozen=True)
class SourceError:
    """A path or entry that could not become a Candidate, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class Candidate:
    """One file to import: a plain file (`path` set) or a zip entry (`archive` and `entry` set).

    `source`, `rel_path` and `label_hint` are safe text (core.io.names); `path` is the real name.
    """

    source: str  # what the user sees: the path, or "photos.zip!dir/a.jpg"
    path: Path | None  # absolute path of a plain file; None for zip entries
    rel_path: str  # relative to the import root, POSIX separators
    label_hint: str | None  # immediate parent folder name; None at the root
    archive: Path | None = field(default=None, repr=False)
    member: str | None = field(default=None, repr=False)
    max_bytes: int = field(default=DEFAULT_MAX_ENTRY_BYTES, repr=False)
    entry: ZipEntry | None = field(default=None, repr=False, compare=False)

    def iter_chunks(self) -> Generator[bytes, None, None]:
        """The file's bytes in chunks, never more than `max_bytes` in all; ImageError naming `source`."""
        if self.path is not None:
            return _plain_chunks(self.path, source=self.source, max_bytes=self.max_bytes)
        if self.archive is None or self.entry is None:
            raise ImageError(self.source, "candidate has neither a path nor an archive entry")
        return iter_entry(self.archive, self.entry, source=self.source, max_bytes=self.max_bytes)

    def read_bytes(self, *, max_pixels: int | None = None) -> bytes:
        """All the bytes, after the first ones passed `preflight` (so 500 MB of zeros costs one chunk).

        `max_pixels` also refuses a header declaring more pixels before the rest is read.
        """
        chunks = self.iter_chunks()
        try:
            head = read_head(chunks)
            preflight(self.source, head, max_pixels=max_pixels or 2**63)
            return head + b"".join(chunks)
        finally:
            chunks.close()


def read_head(chunks: Iterator[bytes], size: int = HEAD_BYTES) -> bytes:
    """At least `size` bytes from `chunks` (fewer only at the end): what `preflight` looks at."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= size:
            break
    return head


def _plain_chunks(path: Path, *, source: str, max_bytes: int) -> Generator[bytes, None, None]:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ImageError(source, os_reason(exc)) from exc
    with os.fdopen(descriptor, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise ImageError(source, "not a regular file")
            total = 0
            while chunk := handle.read(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise ImageError(source, f"file too large: over the cap of {max_bytes:,} bytes")
                yield chunk
        except OSError as exc:
            raise ImageError(source, os_reason(exc)) from exc


def os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    return f"cannot read: {exc.strerror or exc}"
