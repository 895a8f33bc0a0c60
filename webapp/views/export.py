"""The Export tab: every format core.export offers (coco, yolo-detect and yolo-segment with the
region instances), written under the media folder and offered as a download (folder formats as one zip)."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import gradio as gr

from core.export import FORMATS
from core.export.options import MASKS
from core.export.records import INCLUDES, STATUSES
from core.service import Service
from webapp.handlers import user_of
from webapp.views import Ctx, need_project


def export_target(service: Service, project: str, fmt: str) -> Path:
    """A new path under <media>/exports; single-file formats get their file name's suffix."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", project).strip("-") or "project"
    base = service.settings.resolved_media_dir() / "exports" / f"{safe}-{fmt}-{time.strftime('%Y%m%d-%H%M%S')}"
    name = FORMATS[fmt].file_name if fmt in FORMATS else None
    return base.with_name(base.name + Path(name).suffix) if name else base


def export(service: Service, project: str, fmt: str = "csv", include: str = "all", status: str = "all",
           min_confidence: float = 0.0, split: str = "", masks: str = "rle",
           progress: gr.Progress = gr.Progress(),  # noqa: B008  (Gradio's marker for a progress bar)
           request: gr.Request | None = None) -> tuple[str, dict[str, Any]]:
    """Export the project (admins); returns the file to download (a zip for folder formats) and the report."""
    project = need_project(project)
    actor = user_of(service, request)
    out = export_target(service, project, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = service.exporting.export(project, fmt=fmt, out=out, annotator=actor, include=include, status=status,
                            min_confidence=float(min_confidence), split=split or None, masks=masks or "rle",
                            on_progress=lambda done, total: progress((done, total), unit="images"))
    if out.is_dir():
        return shutil.make_archive(str(out), "zip", root_dir=out), report
    return str(out), report


def build(ctx: Ctx) -> None:
    with gr.Row():
        fmt = gr.Dropdown(list(FORMATS), value="csv", label="Format")
        include = gr.Radio(list(INCLUDES), value="all", label="Label sources (all: human first, else model)")
        status = gr.Radio(list(STATUSES), value="all", label="Images")
    with gr.Row():
        min_confidence = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Drop pseudo-labels below this confidence")
        split = gr.Textbox(label="Split (train,val[,test] fractions)", placeholder="0.8,0.1,0.1")
        masks = gr.Dropdown(list(MASKS), value="rle", label="Region masks (coco): RLE or polygons")
    go = gr.Button("Export", variant="primary", elem_id="cm-export")
    download = gr.File(label="Download", elem_id="cm-download")
    report = gr.JSON(label="Report")
    options = [fmt, include, status, min_confidence, split, masks]
    go.click(ctx.fn(export), [ctx.project, *options], [download, report], api_name="ui_export",
             api_visibility="undocumented")
    # The API endpoint takes the project as text: the picker only accepts the choices a page was given.
    project_name = gr.Textbox(visible="hidden")
    gr.Button(visible="hidden").click(ctx.fn(export), [project_name, *options], [download, report], api_name="export")
