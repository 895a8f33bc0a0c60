"""Where candidate image files come from: folders, explicit files and zip archives.

Nothing is ever extracted to disk: zip entries are read into memory, size-capped, by name.
Iteration never stops on a bad path; it yields a SourceError for it and goes on.
"""

from __future__ import annotations

import csv
import os
import posixpath
import re
import stat
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from core.errors import ImageError, InvalidInput
from core.io.images import IMAGE_EXTENSIONS

DEFAULT_MAX_ENTRY_BYTES = 512 * 2**20
_UNSAFE = "unsafe path in archive (escapes the target directory); skipped"
_SYMLINK = "unsafe entry in archive (symbolic link); skipped"
_REVISITED = "symbolic link to a folder already visited (loop or duplicate); skipped"
_DRIVE = re.compile(r"^[A-Za-z]:")
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError)


@dataclass(frozen=True)
class Candidate:
    """One file to import: a plain file (`path` set) or a zip entry (`archive` and `member` set)."""

    source: str  # what the user sees: the path, or "photos.zip!dir/a.jpg"
    path: Path | None  # absolute path of a plain file; None for zip entries
    rel_path: str  # relative to the import root, POSIX separators
    label_hint: str | None  # immediate parent folder name; None at the root
    archive: Path | None = field(default=None, repr=False)
    member: str | None = field(default=None, repr=False)
    max_bytes: int = field(default=DEFAULT_MAX_ENTRY_BYTES, repr=False)

    def read_bytes(self) -> bytes:
        """The file's bytes, at most `max_bytes`; raises ImageError naming `source`."""
        if self.path is not None:
            return _read_plain(self.path, source=self.source, max_bytes=self.max_bytes)
        if self.archive is None or self.member is None:
            raise ImageError(self.source, "candidate has neither a path nor an archive entry")
        return _read_member(self.archive, self.member, source=self.source, max_bytes=self.max_bytes)


@dataclass(frozen=True)
class SourceError:
    """A path or entry that could not become a Candidate, and why."""

    source: str
    reason: str


def iter_candidates(
    paths: Sequence[str | Path], *, max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
) -> Iterator[Candidate | SourceError]:
    """Candidates from folders (recursive, sorted), zip archives and explicit files, in order."""
    for given in paths:
        path = Path(given)
        source = str(given)
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            yield SourceError(source, _os_reason(exc))
            continue
        if stat.S_ISDIR(mode):
            yield from _iter_directory(path, max_bytes=max_entry_bytes)
        elif path.suffix.lower() == ".zip":
            yield from _iter_zip(path, source=source, max_bytes=max_entry_bytes)
        else:
            yield _explicit_file(path, source=source, max_bytes=max_entry_bytes)


def _explicit_file(path: Path, *, source: str, max_bytes: int) -> Candidate | SourceError:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return SourceError(source, _os_reason(exc))
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return SourceError(source, "not a regular file")
    finally:
        os.close(descriptor)
    return Candidate(
        source=source,
        path=path.absolute(),
        rel_path=path.name,
        label_hint=None,
        max_bytes=max_bytes,
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
                yield SourceError(str(directory), _REVISITED)
                continue
            seen.add((info.st_dev, info.st_ino))
            files, subdirs = _scan(directory, root=root, max_bytes=max_bytes)
        except OSError as exc:
            yield SourceError(str(directory), _os_reason(exc))
            continue
        yield from files
        stack.extend(reversed(subdirs))


def _scan(directory: Path, *, root: Path, max_bytes: int) -> tuple[list[Candidate | SourceError], list[Path]]:
    """One folder: its image files and its visible subfolders, both sorted by name."""
    with os.scandir(directory) as scanner:
        entries = sorted(scanner, key=lambda entry: entry.name)
    files: list[Candidate | SourceError] = []
    subdirs: list[Path] = []
    for entry in entries:
        path = directory / entry.name
        if entry.name.startswith("."):
            continue
        if _entry_is(entry, "dir"):
            subdirs.append(path)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(_walked_file(entry, path=path, root=root, max_bytes=max_bytes))
    return files, subdirs


def _walked_file(entry: os.DirEntry[str], *, path: Path, root: Path, max_bytes: int) -> Candidate | SourceError:
    if not _entry_is(entry, "file"):
        broken = entry.is_symlink() and not path.exists()
        return SourceError(str(path), "broken symbolic link" if broken else "not a regular file")
    rel = path.relative_to(root)
    return Candidate(
        source=str(path),
        path=path.absolute(),
        rel_path=rel.as_posix(),
        label_hint=rel.parent.name or None,
        max_bytes=max_bytes,
    )


def _entry_is(entry: os.DirEntry[str], kind: str) -> bool:
    """`entry.is_dir()` / `is_file()` following symlinks; False where stat fails."""
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError:
        return False


def _iter_zip(path: Path, *, source: str, max_bytes: int) -> Iterator[Candidate | SourceError]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except _ARCHIVE_ERRORS as exc:
        yield SourceError(source, f"not a readable zip archive: {exc}")
        return
    names: set[str] = set()
    for info in infos:
        if info.is_dir():
            continue
        item = _zip_entry(info, archive=path, source=source, max_bytes=max_bytes, names=names)
        if item is not None:
            yield item


def _zip_entry(
    info: zipfile.ZipInfo, *, archive: Path, source: str, max_bytes: int, names: set[str]
) -> Candidate | SourceError | None:
    """The Candidate for one entry, a SourceError if it is unsafe, or None to skip it silently."""
    entry_source = f"{source}!{info.filename}"
    rejection = _zip_rejection(info, max_bytes=max_bytes)
    if rejection is not None:
        return SourceError(entry_source, rejection)
    parts = [part for part in info.filename.replace("\\", "/").split("/") if part not in ("", ".")]
    rel = PurePosixPath(*parts)
    if any(part.startswith(".") for part in parts) or rel.suffix.lower() not in IMAGE_EXTENSIONS:
        return None
    if rel.as_posix() in names:
        return SourceError(entry_source, "duplicate entry name in archive; skipped")
    names.add(rel.as_posix())
    return Candidate(
        source=entry_source,
        path=None,
        rel_path=rel.as_posix(),
        label_hint=rel.parent.name or None,
        archive=archive.absolute(),
        member=info.filename,
        max_bytes=max_bytes,
    )


def _zip_rejection(info: zipfile.ZipInfo, *, max_bytes: int) -> str | None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name) or ".." in name.split("/"):
        return _UNSAFE
    if stat.S_ISLNK(info.external_attr >> 16):
        return _SYMLINK
    if info.flag_bits & 0x1:
        return "encrypted entry in archive (password protected); skipped"
    if info.file_size > max_bytes:
        return (
            f"entry too large: declares {info.file_size:,} bytes uncompressed, over the cap of "
            f"{max_bytes:,} (zip bomb protection); skipped"
        )
    return None


def _read_plain(path: Path, *, source: str, max_bytes: int) -> bytes:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ImageError(source, _os_reason(exc)) from exc
    with os.fdopen(descriptor, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise ImageError(source, "not a regular file")
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise ImageError(source, _os_reason(exc)) from exc
    if len(data) > max_bytes:
        raise ImageError(source, f"file too large: over the cap of {max_bytes:,} bytes")
    return data


def _read_member(archive: Path, member: str, *, source: str, max_bytes: int) -> bytes:
    """Read one entry with a fresh ZipFile (thread-safe), never more than `max_bytes`."""
    try:
        with zipfile.ZipFile(archive) as opened:
            info = opened.getinfo(member)
            declared_ok = info.file_size <= max_bytes
            data = _read_capped(opened, info, max_bytes=max_bytes) if declared_ok else b""
    except (*_ARCHIVE_ERRORS, KeyError, RuntimeError, NotImplementedError) as exc:
        raise ImageError(source, f"corrupt or unreadable archive entry: {exc}") from exc
    if not declared_ok or len(data) > max_bytes:
        raise ImageError(source, f"entry too large: over the cap of {max_bytes:,} bytes")
    return data


def _read_capped(opened: zipfile.ZipFile, info: zipfile.ZipInfo, *, max_bytes: int) -> bytes:
    """At most `max_bytes + 1` bytes, whatever the header claims (the CRC is checked at EOF)."""
    with opened.open(info) as handle:
        return handle.read(max_bytes + 1)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    return f"cannot read: {exc.strerror or exc}"


# --- label files --------------------------------------------------------------------------------

_PATH_COLUMNS = ("path", "relative_path", "file", "filename", "image")


def read_label_csv(path: str | Path) -> tuple[dict[str, str], list[SourceError]]:
    """`path,label` rows (optional header; extra columns allowed) -> ({path: label}, bad rows)."""
    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    errors: list[SourceError] = []
    rows = [(number, row) for number, row in _csv_rows(Path(path)) if any(map(str.strip, row))]
    columns = _header_columns(rows[0][1]) if rows else None
    if columns is not None:
        rows = rows[1:]
    for number, row in rows:
        where = f"{path} line {number}"
        entry = _label_row(row, columns=columns or (0, 1))
        if isinstance(entry, str):
            errors.append(SourceError(where, entry))
            continue
        key, label = entry
        if key in labels and labels[key] != label:
            reason = (
                f"conflicting label {label!r} for {key!r} (line {first_line[key]} says "
                f"{labels[key]!r}); the first is kept"
            )
            errors.append(SourceError(where, reason))
            continue
        labels.setdefault(key, label)
        first_line.setdefault(key, number)
    return labels, errors


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every record; InvalidInput naming the file if it is unreadable."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            return [(reader.line_num, row) for row in reader]
    except FileNotFoundError as exc:
        raise InvalidInput(f"label file {str(path)!r}: no such file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"label file {str(path)!r} cannot be read as CSV: {exc}") from exc


def _header_columns(row: list[str]) -> tuple[int, int] | None:
    """(path column, label column) if `row` is a header naming both, else None."""
    names = [cell.strip().lower() for cell in row]
    if "label" not in names:
        return None
    path_columns = [names.index(name) for name in _PATH_COLUMNS if name in names]
    return (path_columns[0], names.index("label")) if path_columns else None


def _label_row(row: list[str], *, columns: tuple[int, int]) -> tuple[str, str] | str:
    """(normalised path, label), or the reason the row is unusable."""
    path_column, label_column = columns
    raw_path = row[path_column].strip() if len(row) > path_column else ""
    label = row[label_column].strip() if len(row) > label_column else ""
    if not raw_path:
        return "empty path"
    if not label:
        return f"missing label for {raw_path!r}"
    return normalise_key(raw_path), label


def normalise_key(path: str) -> str:
    """POSIX separators, no './' or duplicate slashes: the form label keys are compared in."""
    return posixpath.normpath(path.strip().replace("\\", "/"))


class LabelMatcher:
    """Matches candidates to labels: rel_path, absolute path, source, then unambiguous basename.

    Build it once per import; each `match` is O(1).
    """

    def __init__(self, labels: dict[str, str]) -> None:
        self._labels = {normalise_key(key): label for key, label in labels.items()}
        by_name: dict[str, set[str]] = {}
        for key, label in self._labels.items():
            by_name.setdefault(posixpath.basename(key), set()).add(label)
        self._by_name = {name: found.pop() for name, found in by_name.items() if len(found) == 1}

    def match(self, candidate: Candidate) -> str | None:
        """The label for `candidate`, or None where no key matches unambiguously."""
        keys = [candidate.rel_path, candidate.source]
        if candidate.path is not None:
            keys.insert(1, candidate.path.as_posix())
        for key in keys:
            label = self._labels.get(normalise_key(key))
            if label is not None:
                return label
        return self._by_name.get(posixpath.basename(normalise_key(candidate.rel_path)))


def match_label(labels: dict[str, str], candidate: Candidate) -> str | None:
    """One-off `LabelMatcher(labels).match(candidate)`; build a LabelMatcher for many candidates."""
    return LabelMatcher(labels).match(candidate)
