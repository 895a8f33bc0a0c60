"""Label files given with ``--labels-from``: a ``path,label`` CSV, validated once at the boundary.

A CSV is accepted with a header naming a path column and a ``label`` column (any order, extra
columns allowed: the shared ``manifest.csv`` works), or without a header when its first row
already looks like ``path,label``. Anything else is an InvalidInput that names the file and lists
the columns found. Problems in single rows are reported by line number with a short, sanitised
excerpt, never the whole line, and the rest of the file is used.
"""

from __future__ import annotations

import csv
import posixpath
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from core.errors import InvalidInput
from core.io.candidate import SourceError
from core.io.names import display_name

if TYPE_CHECKING:
    from core.io.candidate import Candidate

PATH_COLUMNS = ("path", "relative_path", "file", "filename", "image")
_EXCERPT = 40


def check_label_csv(path: str | Path) -> None:
    """Raise InvalidInput unless `path` is a readable CSV with recognisable path and label columns."""
    rows = _data_rows(Path(path))
    _columns(rows, path=Path(path))


def read_label_csv(path: str | Path) -> tuple[dict[str, str], list[SourceError]]:
    """`path,label` rows (optional header; extra columns allowed) -> ({path: label}, bad rows)."""
    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    errors: list[SourceError] = []
    rows = _data_rows(Path(path))
    columns, has_header = _columns(rows, path=Path(path))
    for number, row in rows[1:] if has_header else rows:
        where = f"{display_name(path)} line {number}"
        entry = _label_row(row, columns=columns)
        if isinstance(entry, str):
            errors.append(SourceError(where, entry))
            continue
        key, label = entry
        if key in labels and labels[key] != label:
            reason = (
                f"conflicting label {excerpt(label)!r} for {excerpt(key)!r} (line {first_line[key]} says "
                f"{excerpt(labels[key])!r}); the first is kept"
            )
            errors.append(SourceError(where, reason))
            continue
        labels.setdefault(key, label)
        first_line.setdefault(key, number)
    return labels, errors


def excerpt(text: str) -> str:
    """At most 40 characters of `text`, control characters and undecodable bytes replaced."""
    safe = display_name(text)
    return safe if len(safe) <= _EXCERPT else safe[: _EXCERPT - 1] + "\u2026"


def _data_rows(path: Path) -> list[tuple[int, list[str]]]:
    return [(number, row) for number, row in _csv_rows(path) if any(map(str.strip, row))]


def _columns(rows: list[tuple[int, list[str]]], *, path: Path) -> tuple[tuple[int, int], bool]:
    """((path column, label column), whether the first row is a header); InvalidInput if neither."""
    if not rows:
        raise InvalidInput(f"label file {display_name(path)!r} has no rows; expected a path,label CSV")
    first = rows[0][1]
    header = _header_columns(first)
    if header is not None:
        return header, True
    if len(first) >= 2 and _looks_like_path(first[0]):
        return (0, 1), False
    found = ", ".join(repr(excerpt(cell.strip())) for cell in first[:20]) or "(none)"
    raise InvalidInput(
        f"label file {display_name(path)!r}: no path and label columns found (columns: {found}); expected a header "
        f"with 'label' and one of {', '.join(PATH_COLUMNS)}, or rows of path,label without a header"
    )


def _looks_like_path(cell: str) -> bool:
    text = cell.strip().replace("\\", "/")
    return "/" in text or bool(PurePosixPath(text).suffix)


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every record; InvalidInput naming the file if it is unreadable."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            return [(reader.line_num, row) for row in reader]
    except FileNotFoundError as exc:
        raise InvalidInput(f"label file {display_name(path)!r}: no such file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"label file {display_name(path)!r} cannot be read as UTF-8 CSV: {exc}") from exc


def _header_columns(row: list[str]) -> tuple[int, int] | None:
    """(path column, label column) if `row` is a header naming both, else None."""
    names = [cell.strip().lower() for cell in row]
    if "label" not in names:
        return None
    path_columns = [names.index(name) for name in PATH_COLUMNS if name in names]
    return (path_columns[0], names.index("label")) if path_columns else None


def _label_row(row: list[str], *, columns: tuple[int, int]) -> tuple[str, str] | str:
    """(normalised path, label), or the reason the row is unusable."""
    path_column, label_column = columns
    raw_path = row[path_column].strip() if len(row) > path_column else ""
    label = row[label_column].strip() if len(row) > label_column else ""
    if not raw_path:
        return "empty path"
    if not label:
        return f"missing label for {excerpt(raw_path)!r}"
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
