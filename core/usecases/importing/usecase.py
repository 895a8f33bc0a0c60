"""The import use case: images into a project (validated, de-duplicated, optionally labeled from
their folders or a CSV), and labels made elsewhere onto the project's images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.export import import_labels
from core.usecases.context import Context
from core.usecases.importing.importer import ImportRequest, ImportSummary, ProgressFn, check_labels_from, run_import
from core.usecases.labeling.states import ProjectStates


class Importing:
    def __init__(self, context: Context, states: ProjectStates) -> None:
        self.context = context
        self.states = states

    def images(self, project: str, paths: Sequence[str | Path], *, labels_from: str | None = None,
               annotator: str | None = None, progress: bool = True,
               on_progress: ProgressFn | None = None) -> ImportSummary:
        if not paths:
            raise InvalidInput("import: give at least one folder, zip file or image file")
        check_labels_from(labels_from)
        with self.context.action(project, annotator=annotator, permission="manage_projects") as act:
            s = self.context.settings
            request = ImportRequest(project_id=act.project_id, paths=list(paths), labels_from=labels_from,
                                    media_dir=s.resolved_media_dir(), max_pixels=s.max_pixels,
                                    user_id=act.annotator.id)
        try:
            return run_import(self.context.sessions, request, progress=progress, on_progress=on_progress)
        finally:
            self.states.forget(request.project_id)

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
