"""The Export tab: every format the exporting use case offers (coco, yolo-detect and yolo-segment with
the region instances), written under the media folder's exports and offered as a download (folder
formats as one zip, written under a temporary name and renamed when complete); and "Train a model": a
background training job (head or distilled student) followed with a progress bar, its report (held-out
accuracy, per-class table, confusion matrix) and the zipped model folder to download."""

from __future__ import annotations

import math
import time
from typing import Any

import gradio as gr

from core.errors import ClipmarkError, InvalidInput
from core.service import Service
from core.usecases.exporting.results import FORMATS, INCLUDES, MASKS, STATUSES
from core.usecases.results import markdown_text as md
from core.usecases.training.results import KINDS, StudentOptions, TrainReport
from webapp.handlers import user_of
from webapp.payloads import to_json
from webapp.views import HIDDEN, Ctx, need_project


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
    build_train(ctx)


# -- Train a model -----------------------------------------------------------------------------------

POLL_S = 0.5


def ui_start_train(service: Service, project: str, kind: str = "head", student: str = "mobilenetv3_small_100",
                   epochs: float = 5, image_size: float = 224, holdout: float = 0.2,
                   request: gr.Request | None = None) -> str:
    """Start a training job (admins); returns its id (the wait step follows it, Cancel stops it)."""
    options = StudentOptions(name=str(student or "").strip() or "mobilenetv3_small_100",
                             epochs=int(_number(epochs, "epochs", 5)),
                             image_size=int(_number(image_size, "image size", 224)))
    job = service.training.start_train(need_project(project), kind=kind or "head", student=options,
                                       holdout=_number(holdout, "holdout", 0.2), annotator=user_of(service, request))
    return job.job_id


def _number(value: Any, field: str, default: float) -> float:
    """A number from the form or an API client: empty -> `default`; text, NaN or infinity -> InvalidInput."""
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field}: a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise InvalidInput(f"{field}: a finite number, got {value!r}")
    return number


def ui_wait_train(service: Service, job_id: str,
                  progress: gr.Progress = gr.Progress(),  # noqa: B008  (Gradio's marker for a progress bar)
                  request: gr.Request | None = None) -> tuple[str, str | None, str | None, str]:
    """Follow the job until it ends: (the report as Markdown, the confusion-matrix picture, the zip, the
    model folder)."""
    if not job_id:
        return "", None, None, ""
    user = user_of(service, request)
    job = service.jobs.get(job_id, annotator=user)
    while not job.finished:
        progress((job.done, job.total) if job.total else 0.0, desc=f"{job.kind}: {job.stage}", unit="steps")
        time.sleep(POLL_S)
        job = service.jobs.get(job_id, annotator=user)
    report = (job.result or {}).get("train")
    if job.error:  # through ctx.fn's to_gr_error, which escapes it (it can name classes or files)
        raise ClipmarkError(f"training failed: {job.error}")
    if not isinstance(report, TrainReport):
        notes = md(" ".join(job.notes))
        return f"The training job was {job.status}; no model was written. {notes}", None, None, ""
    return report_markdown(report), report.evaluation.confusion_png, report.zip_path, report.folder


def ui_use_model(service: Service, project: str, folder: str, request: gr.Request | None = None) -> str:
    """Make the model just trained the project's classifier: its predictions become the prediction run."""
    if not folder:
        raise InvalidInput("model: train a model first")
    summary = service.training.set_classifier(need_project(project), folder, annotator=user_of(service, request))
    return f"Stored {summary.images} predictions of {md(summary.model_version)} as the project's prediction run."


def ui_cancel_train(service: Service, job_id: str, request: gr.Request | None = None) -> str:
    if not job_id:
        return "No training job is running."
    job = service.jobs.cancel(job_id, annotator=user_of(service, request))
    return f"Stopping the training job {job.job_id} ({job.status})."


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def report_markdown(report: TrainReport) -> str:
    evaluation = report.evaluation
    lines = [f"**{report.kind} model** of {md(report.project)}: trained on {report.trained_on} human labels"
             + (f" and {report.pseudo_labels} pseudo-labels" if report.kind == "student" else "")
             + f" in {report.seconds:.1f} s; {len(report.failed_images)} images failed to decode.", ""]
    if evaluation.images:
        low, high = evaluation.interval or (0.0, 0.0)
        lines += [f"**Held-out accuracy: {_pct(evaluation.accuracy)}** on {evaluation.images} human labels "
                  f"(95% interval {_pct(low)} to {_pct(high)}).", "",
                  "| class | held out | correct | precision | recall |", "| --- | ---: | ---: | ---: | ---: |",
                  *[f"| {md(c.name)} | {c.support} | {c.correct} | {_pct(c.precision)} | {_pct(c.recall)} |"
                    for c in evaluation.per_class]]
    else:
        lines.append("No held-out labels: no held-out accuracy.")
    if report.agreement is not None:
        lines += ["", f"Agreement with the CLIP classifier on {report.agreement_images} unlabeled images: "
                      f"{_pct(report.agreement)}."]
    lines += ["", f"Audit estimate: {report.audit_estimate}."]
    return "\n".join(lines)


def build_train(ctx: Ctx) -> None:
    with gr.Accordion("Train a model", open=False, elem_id="cm-train-panel"):
        with gr.Row():
            kind = gr.Radio(list(KINDS), value="head", label="Model (head: CLIP + the adapted classifier; "
                            "student: a small distilled network)")
            student = gr.Dropdown(["mobilenetv3_small_100", "resnet18", "efficientnet_b0"],
                                  value="mobilenetv3_small_100", allow_custom_value=True, label="Student (timm)")
        with gr.Row():
            epochs = gr.Number(5, precision=0, minimum=1, maximum=200, label="Student epochs")
            image_size = gr.Number(224, precision=0, minimum=16, maximum=1024, label="Student image size")
            holdout = gr.Slider(0.0, 0.5, value=0.2, step=0.05, label="Held-out share of the human labels")
        with gr.Row():
            go = gr.Button("Train", variant="primary", elem_id="cm-train")
            stop = gr.Button("Cancel", elem_id="cm-train-cancel")
        job_id = gr.Textbox(visible="hidden", elem_id="cm-train-job")
        # no KaTeX: a class named "$$...$$" is text (Gradio renders maths after Markdown, escapes or not)
        report = gr.Markdown(elem_id="cm-train-report", latex_delimiters=[])
        picture = gr.Image(label="Confusion matrix (held-out human labels)", type="filepath",
                           elem_id="cm-train-confusion", interactive=False)
        download = gr.File(label="Model (zip)", elem_id="cm-train-download")
        folder = gr.Textbox(visible="hidden")
        use = gr.Button("Use this model as the project's classifier", elem_id="cm-train-use")
        status = gr.Markdown(latex_delimiters=[])
    go.click(ctx.fn(ui_start_train), [ctx.project, kind, student, epochs, image_size, holdout], [job_id],
             api_name="ui_train", **HIDDEN).then(
        ctx.fn(ui_wait_train), [job_id], [report, picture, download, folder], api_name="ui_train_wait",
        api_visibility="undocumented")
    use.click(ctx.fn(ui_use_model), [ctx.project, folder], [status], api_name="ui_train_use", **HIDDEN)
    stop.click(ctx.fn(ui_cancel_train), [job_id], [status], api_name="ui_train_cancel", **HIDDEN)
