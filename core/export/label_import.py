"""Import of labels made elsewhere (imagefolder, csv, coco) or exported by us (jsonl, csv, coco,
imagefolder), onto the images a project already has.

Images are matched by sha256 where the file carries it (or, for folders, by hashing the files),
else by path: the exact path, then a unique path suffix, then a unique file name. Each label
becomes an `import` event. Unknown classes are reported, or added with `add_classes`."""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import validation
from core.errors import Conflict, InvalidInput
from core.export.label_readers import READERS, LabelRow, Problem
from core.store import repo
from core.store.repo import ClassSpec
from core.store.schema import Image

IMPORT_FORMATS = tuple(READERS)
IMPORT_INCLUDES = ("human", "all")
CHUNK = 1000
MAX_LISTED = 50


def _key(path: str) -> str:
    return posixpath.normpath(path.strip().replace("\\", "/")) if path.strip() else ""


class ImageIndex:
    """The project's images by sha256, by path and by file name (for matching rows to images)."""

    def __init__(self, session: Session, *, project_id: int) -> None:
        self.by_sha: dict[str, int] = {}
        self.by_path: dict[str, int] = {}
        self.by_name: dict[str, list[tuple[int, str]]] = {}
        rows = session.execute(select(Image.id, Image.sha256, Image.original_path, Image.file_path)
                               .where(Image.project_id == project_id, Image.status == "ok"))
        for image_id, sha, original, file_path in rows:
            if sha:
                self.by_sha[sha] = image_id
            for path in {_key(original), _key(file_path or "")} - {""}:
                self.by_path[path] = image_id
                self.by_name.setdefault(posixpath.basename(path), []).append((image_id, path))

    def match(self, row: LabelRow) -> int | None:
        if row.sha256:
            return self.by_sha.get(row.sha256.strip().lower())
        for key in map(_key, row.keys):
            found = self.by_path.get(key) if key else None
            if found is None and key:
                found = self._by_suffix(key)
            if found is not None:
                return found
        return None

    def _by_suffix(self, key: str) -> int | None:
        """The one image whose path ends with `key` (relative paths), else with its file name."""
        named = self.by_name.get(posixpath.basename(key), [])
        tail = key.lstrip("/")
        suffix = {image_id for image_id, path in named if path == tail or path.endswith("/" + tail)}
        if len(suffix) == 1:
            return suffix.pop()
        ids = {image_id for image_id, _ in named}
        return ids.pop() if len(ids) == 1 and not suffix else None


@dataclass
class LabelImport:
    rows: int = 0
    labeled: int = 0
    unchanged: int = 0
    kept_existing: int = 0
    skipped_model: int = 0
    unmatched: int = 0
    unknown_classes: Counter[str] = field(default_factory=Counter)
    added_classes: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def problem(self, where: str, reason: str) -> None:
        if len(self.problems) < MAX_LISTED:
            self.problems.append((where, reason))

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "labeled": self.labeled, "unchanged": self.unchanged,
                "kept_existing": self.kept_existing, "skipped_model": self.skipped_model,
                "unmatched": self.unmatched, "unknown_classes": dict(self.unknown_classes),
                "added_classes": self.added_classes,
                "problems": [{"file": f, "reason": r} for f, r in self.problems]}


def import_labels(
    sessions: sessionmaker[Session], *, project_id: int, fmt: str, source: str | Path, user_id: int | None,
    include: str = "human", add_classes: bool = False, replace: bool = False,
) -> dict[str, Any]:
    """Read labels from `source` in `fmt` and record them on the matching images. `include`: 'human'
    skips rows an export marked as model pseudo-labels; 'all' imports them too. `replace`: overwrite
    labels the images already have (by default they are kept and counted)."""
    if fmt not in READERS:
        raise InvalidInput(f"--format: unknown '{fmt}' (valid: {', '.join(READERS)})")
    if include not in IMPORT_INCLUDES:
        raise InvalidInput(f"--include: unknown '{include}' (valid: {', '.join(IMPORT_INCLUDES)})")
    summary = LabelImport()
    rows = READERS[fmt](Path(source).expanduser())
    with sessions.begin() as session:
        index = ImageIndex(session, project_id=project_id)
        classes = {c.name: c.id for c in repo.classes_of(session, project_id=project_id, include_archived=True)}
    while chunk := _take(rows, CHUNK):
        with sessions.begin() as session:
            for row in chunk:
                _apply(session, row, project_id=project_id, index=index, classes=classes, user_id=user_id,
                       options=(include, add_classes, replace), summary=summary)
    return {"format": fmt, "source": str(source), **summary.as_dict()}


def _take(rows: Iterator[LabelRow | Problem], n: int) -> list[LabelRow | Problem]:
    return [row for _, row in zip(range(n), rows, strict=False)]


def _apply(session: Session, row: LabelRow | Problem, *, project_id: int, index: ImageIndex,
           classes: dict[str, int], user_id: int | None, options: tuple[str, bool, bool],
           summary: LabelImport) -> None:
    include, add_classes, replace = options
    if isinstance(row, Problem):
        summary.problem(row.where, row.reason)
        return
    summary.rows += 1
    if row.source in ("model", "model-accepted") and include == "human":
        summary.skipped_model += 1
        return
    image_id = index.match(row)
    if image_id is None:
        summary.unmatched += 1
        summary.problem(row.where, "no image of this project matches (by sha256, path or file name)")
        return
    label_id = _class_id(session, row, project_id=project_id, classes=classes, add=add_classes, summary=summary)
    if label_id is not None:
        _record(session, project_id=project_id, image_id=image_id, label_id=label_id, user_id=user_id,
                replace=replace, summary=summary)


def _class_id(session: Session, row: LabelRow, *, project_id: int, classes: dict[str, int], add: bool,
              summary: LabelImport) -> int | None:
    """The class of `row`: an existing one (the name as written, or cleaned), else added when `add`
    and the name is valid and not an existing name in another case; otherwise counted or reported."""
    if row.label in classes:
        return classes[row.label]
    try:
        label = validation.class_name(row.label, field="label")
        if label not in classes and add:
            validation.unique_name(label, classes, field="label")
    except (InvalidInput, Conflict) as exc:
        summary.problem(row.where, str(exc))
        return None
    if label in classes:
        return classes[label]
    if not add:
        summary.unknown_classes[label] += 1
        return None
    repo.add_classes(session, project_id=project_id, classes=[ClassSpec(label)])
    added = repo.classes_of(session, project_id=project_id, include_archived=True)
    classes.update({c.name: c.id for c in added})
    summary.added_classes.append(label)
    return classes[label]


def _record(session: Session, *, project_id: int, image_id: int, label_id: int, user_id: int | None,
            replace: bool, summary: LabelImport) -> None:
    current = repo.current_label(session, image_id=image_id)
    if current is not None and current.label_id == label_id:
        summary.unchanged += 1
        return
    if current is not None and not replace:
        summary.kept_existing += 1
        return
    event = repo.append_event(session, project_id=project_id, image_id=image_id, annotator_id=user_id,
                              action="import", source="import", label_after_id=label_id,
                              label_before_id=current.label_id if current else None)
    repo.set_current_label(session, event=event)
    summary.labeled += 1

