"""Admit one candidate: sniff its first bytes, stream it to disk while hashing, then validate it.

Memory stays bounded whatever the archive holds: an entry is refused from its first
:data:`~core.io.sniff.HEAD_BYTES` when they are not one of our image formats or declare too many
pixels; a kept entry is streamed to a temporary file in the media folder (never into memory) and
validated from there (mapped, not read); only the decoded first frame, capped by `max_pixels`,
is ever held whole.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from core.errors import ImageError
from core.io.candidate import Candidate, read_head
from core.io.images import DEFAULT_MAX_PIXELS, ImageInfo, inspect_file, inspect_image
from core.io.names import is_storable
from core.io.sniff import preflight

IN_MEMORY_BYTES = 4 * 2**20  # entries under this are validated from memory, larger ones from disk


@dataclass(frozen=True)
class Admitted:
    """A valid image: what it is, and the file that holds its bytes from now on."""

    info: ImageInfo
    file_path: Path  # the original file, or its content-addressed copy inside the media folder


def admit(candidate: Candidate, *, media_dir: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Admitted:
    """Validate `candidate`; zip entries (and files whose names are not text) are kept in `media_dir`.

    Raises ImageError naming the candidate's source. Nothing is written outside `media_dir`.
    """
    chunks = candidate.iter_chunks()
    try:
        head = read_head(chunks)
        preflight(candidate.source, head, max_pixels=max_pixels)
        if candidate.path is not None and is_storable(candidate.path):
            sha256 = _digest(head, chunks)
            info = inspect_file(candidate.path, source=candidate.source, sha256=sha256, max_pixels=max_pixels)
            return Admitted(info, candidate.path)
        return _keep(candidate, head, chunks, media_dir=media_dir, max_pixels=max_pixels)
    finally:
        chunks.close()


def _digest(head: bytes, chunks: Generator[bytes, None, None]) -> str:
    digest = hashlib.sha256(head)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _keep(
    candidate: Candidate, head: bytes, chunks: Generator[bytes, None, None], *, media_dir: Path, max_pixels: int
) -> Admitted:
    """Small entries are validated in memory; larger ones streamed to a temporary file first."""
    data = read_head(chunks, IN_MEMORY_BYTES - len(head))
    if len(data) < IN_MEMORY_BYTES - len(head):
        info = inspect_image(head + data, source=candidate.source, max_pixels=max_pixels)
        return Admitted(info, _store_small(head + data, info, media_dir=media_dir, source=candidate.source))
    return _stream(candidate, head + data, chunks, media_dir=media_dir, max_pixels=max_pixels)


def _store_small(data: bytes, info: ImageInfo, *, media_dir: Path, source: str) -> Path:
    target = _target(media_dir, info)
    if target.is_file() and target.stat().st_size == len(data):
        return target  # content-addressed: the same bytes are already there
    name = ""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-", suffix=".part")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(name, target)
    except OSError as exc:
        raise ImageError(source, f"cannot write to the media folder: {exc.strerror or exc}") from exc
    finally:
        if name:
            Path(name).unlink(missing_ok=True)
    return target


def _target(media_dir: Path, info: ImageInfo) -> Path:
    return media_dir / info.sha256[:2] / f"{info.sha256}.{info.format.lower()}"


def _stream(
    candidate: Candidate, head: bytes, chunks: Generator[bytes, None, None], *, media_dir: Path, max_pixels: int
) -> Admitted:
    """Stream into a temporary file beside the store, validate it, then move it to its hash's name."""
    media_dir.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=media_dir, prefix=".incoming-", suffix=".part")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            digest = hashlib.sha256()
            for chunk in _all(head, chunks):
                digest.update(chunk)
                handle.write(chunk)
        info = inspect_file(temporary, source=candidate.source, sha256=digest.hexdigest(), max_pixels=max_pixels)
        target = _target(media_dir, info)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, target)
        return Admitted(info, target)
    except OSError as exc:
        raise ImageError(candidate.source, f"cannot write to the media folder: {exc.strerror or exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)


def _all(head: bytes, chunks: Generator[bytes, None, None]) -> Generator[bytes, None, None]:
    yield head
    yield from chunks


def remove_leftovers(media_dir: Path) -> int:
    """Delete temporary files an interrupted import left in `media_dir` (call on start); how many."""
    removed = 0
    for pattern in (".incoming-*.part", "*/.incoming-*.part"):
        for path in media_dir.glob(pattern):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
