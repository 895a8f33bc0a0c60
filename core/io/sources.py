"""Where candidate image files come from: folders, explicit files and zip archives.

Nothing is extracted here: a zip's central directory is read once (core.io.zipread) and each entry
becomes a Candidate that streams itself on demand. Iteration never stops on a bad path; it yields
a SourceError for it and goes on. Every file met is yielded as one or the other, so an import can
account for all of them: hidden files, non-images and archives found inside folders included.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from core.errors import ImageError
from core.io.candidate import DEFAULT_MAX_ENTRY_BYTES, Candidate, SourceError, os_reason
from core.io.label_files import LabelMatcher, match_label, normalise_key, read_label_csv
from core.io.names import display_name
from core.io.zipread import ZipEntry, read_directory, unsupported_reason

__all__ = [
    "DEFAULT_MAX_ARCHIVE_BYTES", "DEFAULT_MAX_ARCHIVE_ENTRIES", "DEFAULT_MAX_ENTRY_BYTES", "Candidate", "LabelMatcher",
    "SourceError", "iter_candidates", "match_label", "normalise_key", "read_label_csv",
]  # fmt: skip

DEFAULT_MAX_ARCHIVE_ENTRIES = 100_000
DEFAULT_MAX_ARCHIVE_BYTES = 64 * 2**30
_UNSAFE = "unsafe path in archive (escapes the target directory); skipped"
_SYMLINK = "unsafe entry in archive (symbolic link); skipped"
_REVISITED = "symbolic link to a folder already visited (loop or duplicate); skipped"
_HIDDEN = "hidden file (name starts with '.'); skipped"
_RESOURCE_FORK = "macOS metadata (__MACOSX or '._' file), not an image; skipped"
_NESTED = "nested archive: not opened (import it by naming it, not from inside a folder or archive)"
_ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz", ".zst"})
_DRIVE = re.compile(r"^[A-Za-z]:")


def iter_candidates(
    paths: Sequence[str | Path],
    *,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    max_archive_entries: int = DEFAULT_MAX_ARCHIVE_ENTRIES,
    max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
) -> Iterator[Candidate | SourceError]:
    """Candidates from folders (recursive, sorted), zip archives and explicit files, in order.

    An archive with more than `max_archive_entries` entries, or declaring more than
    `max_archive_bytes` uncompressed in all, is one SourceError and none of it is read.
    """
    for given in paths:
        path = Path(given)
        source = display_name(given)
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            yield SourceError(source, os_reason(exc))
            continue
        if stat.S_ISDIR(mode):
            yield from _iter_directory(path, max_bytes=max_entry_bytes)
        elif path.suffix.lower() == ".zip":
            caps = (max_entry_bytes, max_archive_entries, max_archive_bytes)
            yield from _iter_zip(path, source=source, caps=caps)
        else:
            yield _explicit_file(path, source=source, max_bytes=max_entry_bytes)


def _explicit_file(path: Path, *, source: str, max_bytes: int) -> Candidate | SourceError:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return SourceError(source, os_reason(exc))
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return SourceError(source, "not a regular file")
    finally:
        os.close(descriptor)
    return Candidate(
        source=source, path=path.absolute(), rel_path=display_name(path.name), label_hint=None, max_bytes=max_bytes
    )


def _iter_directory(root: Path, *, max_bytes: int) -> Iterator[Candidate | SourceError]:
    """Depth-first, each folder's files (sorted) before its subfolders (sorted)."""
    seen: set[tuple[int, int]] = set()
    stack: list[Path] = [root]
    while stack:
        directory = stack.pop()
        try:
            info = directory.stat()
            if (info.st_dev, info.st_ino) in seen:
                yield SourceError(display_name(directory), _REVISITED)
                continue
            seen.add((info.st_dev, info.st_ino))
            files, subdirs = _scan(directory, root=root, max_bytes=max_bytes)
        except OSError as exc:
            yield SourceError(display_name(directory), os_reason(exc))
            continue
        yield from files
        stack.extend(reversed(subdirs))


def _scan(directory: Path, *, root: Path, max_bytes: int) -> tuple[list[Candidate | SourceError], list[Path]]:
    """One folder: a Candidate or SourceError for each file, and its visible subfolders, sorted."""
    with os.scandir(directory) as scanner:
        entries = sorted(scanner, key=lambda entry: entry.name)
    files: list[Candidate | SourceError] = []
    subdirs: list[Path] = []
    for entry in entries:
        path = directory / entry.name
        if _entry_is(entry, "dir"):
            if entry.name.startswith("."):
                files.append(SourceError(display_name(path), "hidden folder (name starts with '.'); not walked"))
            else:
                subdirs.append(path)
        else:
            files.append(_walked_file(entry, path=path, root=root, max_bytes=max_bytes))
    return files, subdirs


def _walked_file(entry: os.DirEntry[str], *, path: Path, root: Path, max_bytes: int) -> Candidate | SourceError:
    source = display_name(path)
    if not _entry_is(entry, "file"):
        broken = entry.is_symlink() and not path.exists()
        return SourceError(source, "broken symbolic link" if broken else "not a regular file")
    if entry.name.startswith("._"):
        return SourceError(source, _RESOURCE_FORK)
    if entry.name.startswith("."):
        return SourceError(source, _HIDDEN)
    if path.suffix.lower() in _ARCHIVE_SUFFIXES:
        return SourceError(source, _NESTED)
    rel = PurePosixPath(display_name(path.relative_to(root).as_posix()))
    return Candidate(
        source=source, path=path.absolute(), rel_path=rel.as_posix(), label_hint=rel.parent.name or None,
        max_bytes=max_bytes,
    )  # fmt: skip


def _entry_is(entry: os.DirEntry[str], kind: str) -> bool:
    """`entry.is_dir()` / `is_file()` following symlinks; False where stat fails."""
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError:
        return False


def _iter_zip(path: Path, *, source: str, caps: tuple[int, int, int]) -> Iterator[Candidate | SourceError]:
    max_bytes, max_entries, max_total = caps
    try:
        entries = [
            entry for entry in read_directory(path, source=source, max_entries=max_entries) if not entry.is_dir()
        ]
    except ImageError as exc:
        yield SourceError(source, exc.reason)
        return
    declared = sum(entry.file_size for entry in entries)
    if declared > max_total:
        reason = f"archive declares {declared:,} bytes uncompressed, over the cap of {max_total:,}; not opened"
        yield SourceError(source, reason)
        return
    names: set[str] = set()
    for entry in entries:
        yield _zip_entry(entry, archive=path.absolute(), source=source, max_bytes=max_bytes, names=names)


def _zip_entry(
    entry: ZipEntry, *, archive: Path, source: str, max_bytes: int, names: set[str]
) -> Candidate | SourceError:
    """The Candidate for one entry, or a SourceError saying why it is not read."""
    entry_source = display_name(f"{source}!{entry.name}")
    rejection = _zip_rejection(entry, max_bytes=max_bytes)
    if rejection is not None:
        return SourceError(entry_source, rejection)
    parts = [display_name(part) for part in entry.name.replace("\\", "/").split("/") if part not in ("", ".")]
    rel = PurePosixPath(*parts)
    if parts[0] == "__MACOSX" or rel.name.startswith("._"):
        return SourceError(entry_source, _RESOURCE_FORK)
    if any(part.startswith(".") for part in parts):
        return SourceError(entry_source, _HIDDEN)
    if rel.as_posix() in names:
        return SourceError(entry_source, "duplicate entry name in archive; skipped")
    names.add(rel.as_posix())
    return Candidate(
        source=entry_source, path=None, rel_path=rel.as_posix(), label_hint=rel.parent.name or None,
        archive=archive, member=entry.name, max_bytes=max_bytes, entry=entry,
    )  # fmt: skip


def _zip_rejection(entry: ZipEntry, *, max_bytes: int) -> str | None:
    name = entry.name.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name) or ".." in name.split("/") or not name.strip("/."):
        return _UNSAFE
    if stat.S_ISLNK(entry.external_attr >> 16):
        return _SYMLINK
    unreadable = unsupported_reason(entry)
    if unreadable is not None:
        return f"{unreadable}; skipped"
    if entry.file_size > max_bytes:
        return (
            f"entry too large: declares {entry.file_size:,} bytes uncompressed, over the cap of "
            f"{max_bytes:,} (zip bomb protection); skipped"
        )
    if PurePosixPath(name).suffix.lower() in _ARCHIVE_SUFFIXES:
        return _NESTED
    return None
