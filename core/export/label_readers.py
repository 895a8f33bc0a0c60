"""Readers of labels made elsewhere (or exported by us): each yields LabelRow or Problem, streamed
where the format allows (COCO is one JSON document and is read whole)."""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import InvalidInput
from core.export.atomic import MANIFEST, sha256_of
from core.export.tables import csv_unescaped
from core.io.images import IMAGE_EXTENSIONS
from core.validation import excerpt

PATH_COLUMNS = ("path", "file", "relative_path", "filename", "file_name", "image")


@dataclass(frozen=True)
class LabelRow:
    label: str
    sha256: str | None
    keys: tuple[str, ...]        # paths that may name the image, best first
    source: str | None           # "model" rows are pseudo-labels
    where: str                   # "file line N", for reports


@dataclass(frozen=True)
class Problem:
    where: str
    reason: str


Rows = Iterator[LabelRow | Problem]


def _find(source: Path, names: tuple[str, ...], *, what: str) -> list[Path]:
    """`source` itself if it is a file, else the files of an export folder that hold the labels."""
    if source.is_file():
        return [source]
    if source.is_dir():
        found = [p for name in names for p in sorted(source.glob(name))]
        if found:
            return found
        raise InvalidInput(f"{source}: no {what} file in this folder (looked for {', '.join(names)})")
    raise InvalidInput(f"{source}: no such file or folder")


def read_imagefolder(source: Path) -> Rows:
    """`[split/]<class>/<image>`: the parent folder is the class (mapped back through a clipmark
    manifest when there is one); images are matched by content hash."""
    if not source.is_dir():
        raise InvalidInput(f"{source}: an imagefolder import needs a folder")
    folders = _manifest_folders(source)
    for directory, subdirs, files in os.walk(source):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        here = Path(directory)
        if here == source:
            continue
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            label = folders.get(here.name, here.name)
            try:
                digest = sha256_of(path)
            except OSError as exc:
                yield Problem(str(path), f"cannot read: {exc.strerror}")
                continue
            yield LabelRow(label, digest, (path.relative_to(source).as_posix(), name), None, str(path))


def _manifest_folders(source: Path) -> dict[str, str]:
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    folders = manifest.get("class_folders") if isinstance(manifest, dict) else None
    return {str(k): str(v) for k, v in folders.items()} if isinstance(folders, dict) else {}


def read_csv(source: Path) -> Rows:
    """A header naming a `label` column and a path column (path, file, filename, ...) or `sha256`,
    optionally `source` (our export); or headerless `path,label` rows. Cells escaped against formula
    injection by our CSV export (a leading `'`) are read back as they were."""
    for file in _find(source, ("labels.csv", "*.csv"), what="CSV"):
        try:
            with file.open(newline="", encoding="utf-8-sig") as handle:
                yield from _csv_rows(csv.reader(handle), file)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InvalidInput(f"{file}: cannot be read as CSV: {exc}") from exc
        return


def _csv_rows(reader, file: Path) -> Rows:  # type: ignore[no-untyped-def]
    rows = iter(reader)
    first = next(rows, None)
    if first is None:
        raise InvalidInput(f"{file}: empty; expected a header with `label` and a path column, or path,label rows")
    columns, path_columns, start = _csv_layout([csv_unescaped(c) for c in first], file)
    if start == 1:
        rows = itertools.chain([first], rows)
    for number, raw in enumerate(rows, start=start):
        row = [csv_unescaped(cell) for cell in raw]
        cells = {name: row[k].strip() for name, k in columns.items() if k < len(row)}
        keys = tuple(row[c].strip() for c in path_columns if c < len(row) and row[c].strip())
        if not cells.get("label"):
            continue  # an unlabeled image: nothing to import
        if not keys and not cells.get("sha256"):
            yield Problem(f"{file} line {number}", "no path and no sha256 to find the image by")
            continue
        yield LabelRow(cells["label"], cells.get("sha256") or None, keys, cells.get("source") or None,
                       f"{file} line {number}")


def _csv_layout(first: list[str], file: Path) -> tuple[dict[str, int], list[int], int]:
    """Column indices from the header (first data line 2), or headerless path,label (line 1): a first
    row without a `label` column counts as data only when its first cell names an image file."""
    header = [cell.strip().lower() for cell in first]
    expected = (f"expected a header with `label` and one of {', '.join(PATH_COLUMNS)} or sha256, or "
                "path,label rows without a header")
    if "label" in header:
        columns = {name: header.index(name) for name in header if name}
        path_columns = [columns[c] for c in PATH_COLUMNS if c in columns]
        if not path_columns and "sha256" not in columns:
            raise InvalidInput(f"{file}: no column to find the images by (found: {_listed(first)}); {expected}")
        return columns, path_columns, 2
    if len(first) >= 2 and PurePosixPath(first[0].strip().replace("\\", "/")).suffix.lower() in IMAGE_EXTENSIONS:
        return {"label": 1}, [0], 1
    raise InvalidInput(f"{file}: no recognisable columns (found: {_listed(first)}); {expected}")


def _listed(cells: list[str]) -> str:
    shown = ", ".join(excerpt(cell) for cell in cells[:20])
    return shown + (f" and {len(cells) - 20} more" if len(cells) > 20 else "")


def read_jsonl(source: Path) -> Rows:
    """Our own JSON Lines export (or any with `label` and `path`/`file`/`sha256` keys)."""
    for file in _find(source, ("labels.jsonl", "*.jsonl"), what="JSON Lines"):
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                found = _json_row(line, f"{file} line {number}") if line.strip() else None
                if found is not None:
                    yield found
        return


def _json_row(line: str, where: str) -> LabelRow | Problem | None:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return Problem(where, f"not valid JSON ({exc.msg})")
    if not isinstance(data, dict):
        return Problem(where, "expected a JSON object")
    label = data.get("label")
    if label is None or label == "":
        return None  # an unlabeled image: nothing to import
    keys = tuple(str(data[k]) for k in ("path", "file", "file_name") if data.get(k))
    return LabelRow(str(label), data.get("sha256") or None, keys, data.get("source"), where)


def read_coco(source: Path) -> Rows:
    """COCO files: the image-level label is the one category of an image's annotations (images with
    annotations of several categories are ambiguous for classification and reported). The region
    annotations of a clipmark export (provenance with a segmenter_id) are not image labels: skipped."""
    for file in _find(source, ("annotations.json", "annotations_*.json"), what="COCO"):
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            categories = {c["id"]: str(c["name"]) for c in data.get("categories", [])}
            images = {i["id"]: i for i in data.get("images", [])}
            annotations = data.get("annotations", [])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"{file}: not a COCO annotation file ({exc})") from exc
        yield from _coco_rows(file, categories, images, annotations)


def _coco_rows(file: Path, categories: dict, images: dict, annotations: list) -> Rows:  # type: ignore[type-arg]
    per_image: dict[object, list[dict]] = {}  # type: ignore[type-arg]
    for annotation in annotations:
        if "segmenter_id" not in (annotation.get("provenance") or {}):
            per_image.setdefault(annotation.get("image_id"), []).append(annotation)
    for image_id, found in per_image.items():
        where = f"{file} image {image_id}"
        category_ids = {a.get("category_id") for a in found}
        image = images.get(image_id)
        if image is None or not category_ids <= categories.keys():
            yield Problem(where, "annotation refers to an unknown image or category")
            continue
        names = sorted({categories[c] for c in category_ids})
        if len(names) > 1:
            yield Problem(where, f"annotations of several categories ({', '.join(names)}); not a "
                                 "classification label, skipped")
            continue
        source = (found[0].get("provenance") or {}).get("source")
        keys = tuple(str(image[k]) for k in ("path", "file_name") if image.get(k))
        yield LabelRow(names[0], image.get("sha256"), keys, source, where)
    yield from _image_entry_labels(file, images, seen=set(per_image))


def _image_entry_labels(file: Path, images: dict, *, seen: set) -> Rows:  # type: ignore[type-arg]
    """A clipmark export with instances keeps each image's class on the image entry ("label")."""
    for image_id, image in images.items():
        if image_id in seen or not isinstance(image, dict) or not image.get("label"):
            continue
        source = (image.get("label_provenance") or {}).get("source")
        keys = tuple(str(image[k]) for k in ("path", "file_name") if image.get(k))
        yield LabelRow(str(image["label"]), image.get("sha256"), keys, source, f"{file} image {image_id}")


READERS = {"imagefolder": read_imagefolder, "csv": read_csv, "coco": read_coco, "jsonl": read_jsonl}
