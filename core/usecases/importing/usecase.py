"""The import use case: images into a project (validated, de-duplicated, optionally labeled from
their folders or a CSV), and labels made elsewhere onto the project's images.

Who may read which server paths: the trusted local operator (`annotator=None`, the CLI) any path;
a named annotator (a person acting through the web app) only paths inside Settings.import_roots,
and uploads staged by the jobs use case (`prepare(..., staged=True)`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.export import import_labels
from core.io.intake import remove_leftovers
from core.usecases.context import Context
from core.usecases.importing.importer import (
    CancelledFn,
    ImportRequest,
    ProgressFn,
    check_labels_from,
    run_import,
)
from core.usecases.importing.results import ImportSummary
from core.usecases.importing.roots import ImportRoots
from core.usecases.labeling.states import ProjectStates


class Importing:
    def __init__(self, context: Context, states: ProjectStates) -> None:
        self.context = context
        self.states = states

    def images(self, project: str, paths: Sequence[str | Path], *, labels_from: str | None = None,
               annotator: str | None = None, progress: bool = True, on_progress: ProgressFn | None = None,
               cancelled: CancelledFn | None = None) -> ImportSummary:
        """Import now. `cancelled()` is asked between files; True stops the import (what is done stays)."""
        request = self.prepare(project, paths, labels_from=labels_from, annotator=annotator)
        return self.run(request, progress=progress, on_progress=on_progress, cancelled=cancelled)

    def prepare(self, project: str, paths: Sequence[str | Path], *, labels_from: str | None = None,
                annotator: str | None = None, staged: bool = False) -> ImportRequest:
        """Check the project, the permission and every path (`staged`: files the server itself put in
        its media folder, i.e. uploads) and return the import to run."""
        if not paths:
            raise InvalidInput("paths: give at least one folder, zip file or image file")
        project_id, user_id = self.authorize(project, annotator=annotator)
        roots = self.roots(annotator)
        checked = tuple(Path(p) if staged else roots.check(p, field="folder") for p in paths)
        labels = check_labels_from(labels_from, roots=roots)
        s = self.context.settings
        return ImportRequest(project_id=project_id, paths=checked, labels_from=labels,
                             media_dir=s.resolved_media_dir(), max_pixels=s.max_pixels, user_id=user_id,
                             roots=ImportRoots(None) if staged else roots,
                             max_archive_entries=s.max_archive_entries, max_archive_bytes=s.max_archive_bytes)

    def authorize(self, project: str, *, annotator: str | None) -> tuple[int, int]:
        """(project id, annotator id) when `annotator` may import into `project`; else the error."""
        with self.context.action(project, annotator=annotator, permission="manage_projects", write=False) as act:
            return act.project_id, act.annotator.id

    def run(self, request: ImportRequest, *, progress: bool = False, on_progress: ProgressFn | None = None,
            cancelled: CancelledFn | None = None) -> ImportSummary:
        try:
            return run_import(self.context.sessions, request, progress=progress, on_progress=on_progress,
                              cancelled=cancelled)
        finally:
            self.states.forget(request.project_id)

    def clean_interrupted(self) -> int:
        """Remove the partial files an import killed mid-way left in the media folder (how many); a
        server calls it at start, before any import of its own can run."""
        return remove_leftovers(self.context.settings.resolved_media_dir())

    def roots(self, annotator: str | None) -> ImportRoots:
        """Not limited for the local operator (None); the configured roots for everyone else."""
        return ImportRoots(None if annotator is None else self.context.settings.resolved_import_roots())

    def labels(self, project: str, source: str | Path, *, fmt: str, include: str = "human",
               add_classes: bool = False, replace: bool = False, annotator: str | None = None) -> dict[str, Any]:
        """Labels made elsewhere (imagefolder, csv, coco, our jsonl) onto the project's images."""
        with self.context.action(project, annotator=annotator, permission="manage_projects") as act:
            project_id, user_id = act.project_id, act.annotator.id
        try:
            return import_labels(self.context.sessions, project_id=project_id, fmt=fmt, source=source,
                                 user_id=user_id, include=include, add_classes=add_classes, replace=replace)
        finally:
            self.states.forget(project_id)
