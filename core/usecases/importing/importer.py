"""The import use case: candidate files -> validated, de-duplicated image rows (+ optional labels).

Every bad file is recorded with its reason and the batch goes on. Work is committed in chunks, so
an interrupted import keeps what it finished; re-running it is idempotent (content-hash dedupe)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from core.errors import ImageError, InvalidInput
from core.io.images import ImageInfo, inspect_image
from core.io.sources import Candidate, LabelMatcher, SourceError, iter_candidates, read_label_csv
from core.store import repo

CHUNK = 200
ProgressFn = Callable[[int, int], None]


@dataclass
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    labeled: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    label_problems: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "imported": self.imported, "duplicates": self.duplicates, "labeled": self.labeled,
            "failed": len(self.failed),
            "errors": [{"file": f, "reason": r} for f, r in self.failed],
            "label_problems": [{"file": f, "reason": r} for f, r in self.label_problems],
        }


@dataclass(frozen=True)
class ImportRequest:
    project_id: int
    paths: Sequence[str | Path]
    labels_from: str | None
    media_dir: Path
    max_pixels: int
    user_id: int | None


class _Labeler:
    """Finds the label for a candidate from folder names or a CSV, checked against the classes."""

    def __init__(self, labels_from: str | None, class_ids: dict[str, int], summary: ImportSummary):
        self.mode = labels_from
        self.class_ids = class_ids
        self.matcher = LabelMatcher({})
        if labels_from not in (None, "folders"):
            labels, problems = read_label_csv(labels_from)
            self.matcher = LabelMatcher(labels)
            summary.label_problems.extend((p.source, p.reason) for p in problems)

    def label_for(self, candidate: Candidate) -> tuple[int | None, str | None]:
        if self.mode is None:
            return None, None
        name = candidate.label_hint if self.mode == "folders" else self.matcher.match(candidate)
        if name is None:
            return None, None
        if name not in self.class_ids:
            known = ", ".join(sorted(self.class_ids)) or "(none)"
            return None, f"label '{name}' is not a class of this project (classes: {known}); imported unlabeled"
        return self.class_ids[name], None


def run_import(
    sessions: sessionmaker[Session], request: ImportRequest, *, progress: bool = True,
    on_progress: ProgressFn | None = None,
) -> ImportSummary:
    summary = ImportSummary()
    with sessions.begin() as session:
        class_ids = repo.class_ids_by_name(session, project_id=request.project_id)
    labeler = _Labeler(request.labels_from, class_ids, summary)
    items = list(iter_candidates(request.paths))
    bar = tqdm(total=len(items), unit="file", desc="import", disable=not progress)
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        with sessions.begin() as session:
            for item in chunk:
                _import_one(session, item, request, labeler, summary)
        bar.update(len(chunk))
        if on_progress:
            on_progress(min(start + CHUNK, len(items)), len(items))
    bar.close()
    return summary


def _import_one(
    session: Session, item: Candidate | SourceError, request: ImportRequest, labeler: _Labeler,
    summary: ImportSummary,
) -> None:
    if isinstance(item, SourceError):
        _fail(session, request, summary, item.source, item.reason)
        return
    try:
        data = item.read_bytes()
        info = inspect_image(data, source=item.source, max_pixels=request.max_pixels)
    except ImageError as exc:
        _fail(session, request, summary, item.source, exc.reason)
        return
    label_id, problem = labeler.label_for(item)
    if problem:
        summary.label_problems.append((item.source, problem))
    image = repo.image_by_sha(session, project_id=request.project_id, sha256=info.sha256)
    if image is None:
        image = _store(session, item, data, info, request)
        summary.imported += 1
    else:
        summary.duplicates += 1
    repo.clear_failed_image(session, project_id=request.project_id, original_path=item.source)
    if label_id is not None and repo.current_label(session, image_id=image.id) is None:
        _label(session, request, image.id, label_id)
        summary.labeled += 1


def _store(session: Session, item: Candidate, data: bytes, info: ImageInfo, request: ImportRequest):  # type: ignore[no-untyped-def]
    file_path = str(item.path) if item.path is not None else str(_keep_bytes(data, info, request.media_dir))
    return repo.add_image(
        session, project_id=request.project_id, sha256=info.sha256, original_path=item.source,
        file_path=file_path, width=info.width, height=info.height, format=info.format,
    )


def _keep_bytes(data: bytes, info: ImageInfo, media_dir: Path) -> Path:
    """Bytes with no stable file of their own (zip entries, uploads) go to a content-addressed store."""
    target = media_dir / info.sha256[:2] / f"{info.sha256}.{info.format.lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(target)
    return target


def _label(session: Session, request: ImportRequest, image_id: int, label_id: int) -> None:
    event = repo.append_event(
        session, project_id=request.project_id, image_id=image_id, annotator_id=request.user_id,
        action="import", source="import", label_before_id=None, label_after_id=label_id,
    )
    repo.set_current_label(session, event=event)


def _fail(session: Session, request: ImportRequest, summary: ImportSummary, source: str, reason: str) -> None:
    summary.failed.append((source, reason))
    repo.record_failed_image(session, project_id=request.project_id, original_path=source, error=reason)


def check_labels_from(labels_from: str | None) -> None:
    if labels_from in (None, "folders"):
        return
    if not Path(labels_from).is_file():
        raise InvalidInput(f"--labels-from: '{labels_from}' is neither 'folders' nor an existing CSV file")
