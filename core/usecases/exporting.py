"""The export use case: a project's labels (and region instances) in one of core.export.FORMATS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.export import export_project
from core.usecases.context import Context


class Exporting:
    def __init__(self, context: Context) -> None:
        self.context = context

    def export(self, project: str, *, fmt: str, out: str | Path, annotator: str | None = None,
               **options: Any) -> dict[str, Any]:
        """Write the project in `fmt` (core.export.FORMATS) to `out`; options: include, min_confidence,
        status, link, split, seed, leak_threshold, overwrite, progress, on_progress(done, total)."""
        with self.context.action(project, annotator=annotator, permission="export", write=False) as act:
            project_id = act.project_id
        return export_project(self.context.sessions, project_id=project_id, fmt=fmt, out=out, **options)
