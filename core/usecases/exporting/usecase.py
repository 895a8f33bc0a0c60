"""The export use case: a project's labels (and region instances) in one of core.export.FORMATS,
written where the caller says (the CLI) or under <media>/exports as one download (the web app: a
folder export is zipped under a temporary name and renamed when complete)."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.export import FORMATS, export_project, remove_interrupted, zip_folder_atomically
from core.usecases.context import Context
from core.usecases.exporting.results import ExportReport
from core.validation import project_name


class Exporting:
    def __init__(self, context: Context) -> None:
        self.context = context

    @property
    def folder(self) -> Path:
        """Where web exports are written (and served from): <media>/exports."""
        return self.context.settings.resolved_media_dir() / "exports"

    def export(self, project: str, *, fmt: str, out: str | Path, annotator: str | None = None,
               **options: Any) -> ExportReport:
        """Write the project in `fmt` (core.export.FORMATS) to `out`; options: include, min_confidence,
        status, link, split, seed, leak_threshold, overwrite, masks, progress, on_progress(done, total)."""
        project = project_name(project, field="project")
        with self.context.action(project, annotator=annotator, permission="export", write=False) as act:
            project_id = act.project_id
        report = export_project(self.context.sessions, project_id=project_id, fmt=fmt, out=out, **options)
        return _report(report)

    def download(self, project: str, *, fmt: str, annotator: str | None = None, **options: Any) -> ExportReport:
        """Export under <media>/exports with a fresh name; `download` is the file, or the folder zipped
        (written as .zip.partial, renamed when complete; the folder is then removed)."""
        out = self._target(project, fmt)
        report = self.export(project, fmt=fmt, out=out, annotator=annotator, **options)
        if not out.is_dir():
            return _with_download(report, out)
        zipped = zip_folder_atomically(out)
        shutil.rmtree(out, ignore_errors=True)
        return _with_download(report, zipped)

    def clean_interrupted(self, *, older_than: float = 0.0) -> int:
        """Remove what exports killed mid-way left in <media>/exports; a server calls it at start."""
        return remove_interrupted(self.folder, older_than=older_than)

    def _target(self, project: str, fmt: str) -> Path:
        """A new path under <media>/exports; single-file formats get their file name's suffix."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", project).strip("-.") or "project"
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}"
        base = self.folder / f"{safe[:60]}-{re.sub(r'[^a-z0-9-]', '', fmt)}-{stamp}"
        name = FORMATS[fmt].file_name if fmt in FORMATS else None
        base.parent.mkdir(parents=True, exist_ok=True)
        return base.with_name(base.name + Path(name).suffix) if name else base


def _report(report: Mapping[str, Any]) -> ExportReport:
    return ExportReport(
        out=str(report["out"]), format=str(report["format"]), project=str(report["project"]),
        created_at=str(report["created_at"]), options=dict(report["options"]), classes=tuple(report["classes"]),
        counts=dict(report["counts"]), images_written=int(report["images_written"]),
        changed_since_import=int(report["changed_since_import"]), files=report.get("files"),
        leak_check=report.get("leak_check"), warnings=tuple(report.get("warnings", ())),
    )


def _with_download(report: ExportReport, path: Path) -> ExportReport:
    return replace(report, download=str(path))
