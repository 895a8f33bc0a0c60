"""The import use case: candidate files -> validated, de-duplicated image rows (+ optional labels).

Candidates come from core.io in one pass (a zip's directory is read once; each entry streams itself).
Every file walked is accounted for: imported, a duplicate, or a failure with its reason; the batch
goes on. Work is committed in chunks, so an interrupted import keeps what it finished; re-running it
is idempotent (content-hash dedupe). A cancel request is honoured between files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from core.errors import ImageError, InvalidInput
from core.io.intake import Admitted, admit
from core.io.label_files import check_label_csv, excerpt
from core.io.sources import Candidate, LabelMatcher, SourceError, iter_candidates, read_label_csv
from core.store import repo
from core.store.schema import Image
from core.usecases.importing.results import FileProblem, ImportSummary
from core.usecases.importing.roots import ImportRoots

CHUNK = 200
ProgressFn = Callable[[int, int], None]
CancelledFn = Callable[[], bool]
OUTSIDE_ROOTS = "outside the server's import roots (a symbolic link?); not read"


@dataclass(frozen=True)
class ImportRequest:
    """What one import reads and where it puts it; paths already checked against `roots`."""

    project_id: int
    paths: tuple[Path, ...]
    labels_from: str | None
    media_dir: Path
    max_pixels: int
    user_id: int | None
    roots: ImportRoots = ImportRoots(None)
    max_archive_entries: int = 100_000
    max_archive_bytes: int = 64 * 2**30


@dataclass
class _Tally:
    """The summary while it is being counted."""

    imported: int = 0
    duplicates: int = 0
    labeled: int = 0
    errors: list[FileProblem] = field(default_factory=list)
    label_problems: list[FileProblem] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> ImportSummary:
        return ImportSummary(imported=self.imported, duplicates=self.duplicates, labeled=self.labeled,
                             failed=len(self.errors), errors=tuple(self.errors),
                             label_problems=tuple(self.label_problems), cancelled=self.cancelled)


class _Labeler:
    """Finds the label for a candidate from folder names or a CSV, checked against the classes."""

    def __init__(self, labels_from: str | None, class_ids: dict[str, int], tally: _Tally):
        self.mode = labels_from
        self.class_ids = class_ids
        self.matcher = LabelMatcher({})
        if labels_from not in (None, "folders"):
            labels, problems = read_label_csv(labels_from)
            self.matcher = LabelMatcher(labels)
            tally.label_problems.extend(FileProblem(p.source, p.reason) for p in problems)

    def label_for(self, candidate: Candidate) -> tuple[int | None, str | None]:
        if self.mode is None:
            return None, None
        name = candidate.label_hint if self.mode == "folders" else self.matcher.match(candidate)
        if name is None:
            return None, None
        if name not in self.class_ids:
            known = ", ".join(sorted(self.class_ids)[:20]) or "(none)"
            reason = f"label {excerpt(name)!r} is not a class of this project (classes: {known})"
            return None, f"{reason}; imported unlabeled"
        return self.class_ids[name], None


def run_import(
    sessions: sessionmaker[Session], request: ImportRequest, *, progress: bool = True,
    on_progress: ProgressFn | None = None, cancelled: CancelledFn | None = None,
) -> ImportSummary:
    tally = _Tally()
    with sessions.begin() as session:
        class_ids = repo.class_ids_by_name(session, project_id=request.project_id)
    labeler = _Labeler(request.labels_from, class_ids, tally)
    items = list(iter_candidates(request.paths, max_archive_entries=request.max_archive_entries,
                                 max_archive_bytes=request.max_archive_bytes))
    with tqdm(total=len(items), unit="file", desc="import", disable=not progress) as bar:
        for start in range(0, len(items), CHUNK):
            with sessions.begin() as session:
                done = _import_chunk(session, items[start : start + CHUNK], request, labeler, tally, cancelled)
            bar.update(done)
            if on_progress:
                on_progress(start + done, len(items))
            if tally.cancelled:
                break
    return tally.summary()


def _import_chunk(session: Session, chunk: Sequence[Candidate | SourceError], request: ImportRequest,
                  labeler: _Labeler, tally: _Tally, cancelled: CancelledFn | None) -> int:
    """Import the chunk's files, stopping early on a cancel request; returns how many were done."""
    for done, item in enumerate(chunk):
        if cancelled is not None and cancelled():
            tally.cancelled = True
            return done
        _import_one(session, item, request, labeler, tally)
    return len(chunk)


def _import_one(session: Session, item: Candidate | SourceError, request: ImportRequest, labeler: _Labeler,
                tally: _Tally) -> None:
    if isinstance(item, SourceError):
        _fail(session, request, tally, item.source, item.reason)
        return
    if item.path is not None and not request.roots.allows(item.path):
        _fail(session, request, tally, item.source, OUTSIDE_ROOTS)
        return
    try:
        admitted = admit(item, media_dir=request.media_dir, max_pixels=request.max_pixels)
    except ImageError as exc:
        _fail(session, request, tally, item.source, exc.reason)
        return
    label_id, problem = labeler.label_for(item)
    if problem:
        tally.label_problems.append(FileProblem(item.source, problem))
    image = repo.image_by_sha(session, project_id=request.project_id, sha256=admitted.info.sha256)
    if image is None:
        image = _store(session, item, admitted, request)
        tally.imported += 1
    else:
        tally.duplicates += 1
    repo.clear_failed_image(session, project_id=request.project_id, original_path=item.source)
    if label_id is not None and repo.current_label(session, image_id=image.id) is None:
        _label(session, request, image.id, label_id)
        tally.labeled += 1


def _store(session: Session, item: Candidate, admitted: Admitted, request: ImportRequest) -> Image:
    info = admitted.info
    return repo.add_image(
        session, project_id=request.project_id, sha256=info.sha256, original_path=item.source,
        file_path=str(admitted.file_path), width=info.width, height=info.height, format=info.format,
    )


def _label(session: Session, request: ImportRequest, image_id: int, label_id: int) -> None:
    event = repo.append_event(
        session, project_id=request.project_id, image_id=image_id, annotator_id=request.user_id,
        action="import", source="import", label_before_id=None, label_after_id=label_id,
    )
    repo.set_current_label(session, event=event)


def _fail(session: Session, request: ImportRequest, tally: _Tally, source: str, reason: str) -> None:
    tally.errors.append(FileProblem(source, reason))
    repo.record_failed_image(session, project_id=request.project_id, original_path=source, error=reason)


def check_labels_from(labels_from: str | None, *, roots: ImportRoots) -> str | None:
    """'folders', None, or a CSV of path,label inside the roots with recognisable columns (checked now,
    so a web caller hears at once, not in the job's result)."""
    if labels_from in (None, "folders"):
        return labels_from
    path = roots.check(labels_from, field="labels_from")
    if not path.is_file():
        raise InvalidInput(f"--labels-from: '{excerpt(labels_from)}' is neither 'folders' nor an existing CSV file")
    check_label_csv(path)
    return str(path)
