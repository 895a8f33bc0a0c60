"""The Export tab: every format the exporting use case offers (coco, yolo-detect and yolo-segment with
the region instances), written under the media folder's exports and offered as a download (folder
formats as one zip, written under a temporary name and renamed when complete)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.service import Service
from core.usecases.exporting.results import FORMATS, INCLUDES, MASKS, STATUSES
from webapp.handlers import user_of
from webapp.payloads import to_json
from webapp.views import Ctx, need_project


def export(service: Service, project: str, fmt: str = "csv", include: str = "all", status: str = "all",
           min_confidence: float = 0.0, split: str = "", masks: str = "rle",
           progress: gr.Progress = gr.Progress(),  # noqa: B008  (Gradio's marker for a progress bar)
           request: gr.Request | None = None) -> tuple[str | None, dict[str, Any]]:
    """Export the project (admins); returns the file to download (a zip for folder formats) and the report."""
    report = service.exporting.download(
        need_project(project), fmt=fmt, annotator=user_of(service, request), include=include or "all",
        status=status or "all", min_confidence=float(min_confidence or 0.0), split=split or None,
        masks=masks or "rle", on_progress=lambda done, total: progress((done, total), unit="images"))
    return report.download, to_json(report)


def build(ctx: Ctx) -> None:
    with gr.Row():
        fmt = gr.Dropdown(list(FORMATS), value="csv", label="Format")
        include = gr.Radio(list(INCLUDES), value="all", label="Label sources (all: human first, else model)")
        status = gr.Radio(list(STATUSES), value="all", label="Images")
    with gr.Row():
        min_confidence = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Drop pseudo-labels below this confidence")
        split = gr.Textbox("", label="Split (train,val[,test] fractions)", placeholder="0.8,0.1,0.1")
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
