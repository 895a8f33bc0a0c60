"""The Dashboard tab: progress, labels per class and per source, the honest estimate of the remaining
pseudo-labels' accuracy (blind random audits) with its history and the labels saved against random
order, "accept the rest" (with a confirmation naming the count and the estimate), the label-efficiency
curve and per-annotator throughput, as plots."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from core.errors import InvalidInput
from core.service import Service
from core.usecases.browse.results import Dashboard
from core.usecases.labeling.results import AcceptPreview, AccuracyEstimate, Interval
from webapp import render
from webapp.handlers import user_of
from webapp.views import Ctx, need_project

SOURCES = ("human", "import", "review", "model")


def interval_text(acc: Interval) -> str:
    return (f"<b>{render.pct(acc.value or 0.0)}</b> (95% interval {render.pct(acc.low)} to {render.pct(acc.high)}), "
            f"from {acc.answered:,} answered audits" + (f", {acc.skipped:,} skipped" if acc.skipped else ""))


def estimate_html(found: AccuracyEstimate) -> str:
    acc = found.accuracy
    if acc.value is None:
        text = (f"Estimated accuracy of the {found.pool:,} remaining pseudo-labels: no audit answered yet "
                f"({found.audit_share:.0%} of the items served are blind random audits).")
    else:
        text = (f"Estimated accuracy of the {found.pool:,} remaining pseudo-labels: {interval_text(acc)}; "
                f"{found.audit_share:.0%} of the items served are blind random audits.")
    saved = "" if found.labels_saved is None else (
        f' Labels saved against random order: <b id="cm-labels-saved">{found.labels_saved:,.0f}</b>.')
    return f'<div id="cm-estimate">{text}{saved}</div>'


def summary(data: Dashboard) -> str:
    p, acc, clf = data.progress, data.accuracy, data.classifier
    share = p.labeled / p.images if p.images else 0.0
    lines = [f'<div class="cm-progress"><div style="width:{100 * share:.1f}%"></div></div>',
             f'<div class="cm-counts" id="cm-dash-progress">{p.labeled:,} of {p.images:,} images labeled '
             f'({render.pct(share)}) · {p.embedded:,} embedded · {p.skipped:,} skipped</div>']
    if acc["estimate"] is not None:  # not an accuracy estimate: the queue serves the images the model is least sure of
        lines.append(f'<div>Queue items whose stored prediction the annotator kept: {render.pct(acc["estimate"])} of '
                     f'{acc["compared"]:,} (biased low by design: these are the hardest images).</div>')
    if clf is not None and clf["cv_accuracy"] is not None:
        lines.append(f'<div>Live classifier {render.esc(clf["version"])}: cross-validated accuracy '
                     f'{render.pct(clf["cv_accuracy"])} on the labeled images (zero-shot: '
                     f'{render.pct(clf["cv_zero_shot_accuracy"] or 0.0)}).</div>')
    return "".join(lines)


def frames(data: Dashboard) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per class x source counts, per source totals, the curve, throughput per annotator and per hour."""
    per_class = pd.DataFrame([{"class": c["label"], "source": s, "images": c[s]}  # type: ignore[literal-required]
                              for c in data.classes for s in SOURCES], columns=["class", "source", "images"])
    sources = pd.DataFrame([{"source": s, "images": n} for s, n in data.sources.items()],
                           columns=["source", "images"])
    curve = pd.DataFrame(list(data.curve), columns=["labels", "accuracy", "evaluated", "version"])
    people = pd.DataFrame(data.throughput["annotators"],
                          columns=["annotator", "decisions", "accept", "correct", "skip", "undo", "active_minutes",
                                   "per_hour"])
    timeline = pd.DataFrame(data.throughput["timeline"], columns=["annotator", "hour", "decisions"])
    timeline["hour"] = pd.to_datetime(timeline["hour"])
    return per_class, sources, curve, people, timeline


def estimate_frames(found: AccuracyEstimate) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The estimate after each answered audit (with its interval), and errors fixed by the queue
    against those random order would have fixed with as many labels."""
    history = pd.DataFrame([{"labels": h.labels, "accuracy": v, "series": name} for h in found.history
                            for name, v in (("estimate", h.value), ("95% low", h.low), ("95% high", h.high))],
                           columns=["labels", "accuracy", "series"])
    saved = pd.DataFrame([{"labels": s.labels, "errors fixed": v, "series": name} for s in found.saved
                          for name, v in (("queue", s.fixed), ("random order (expected)", s.random),
                                          ("random 95% low", s.random_low), ("random 95% high", s.random_high))],
                         columns=["labels", "errors fixed", "series"])
    return history, saved


def ui_dashboard(service: Service, project: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
    project = need_project(project)
    who = user_of(service, request)
    data = service.browse.dashboard(project, annotator=who)
    found = service.labeling.estimate(project, annotator=who)
    return (summary(data) + estimate_html(found), *frames(data), *estimate_frames(found))


def preview_text(plan: AcceptPreview) -> str:
    acc = plan.accuracy
    accuracy = "not estimated yet (no audit answered)" if acc.value is None else interval_text(acc)
    return (f'<div id="cm-accept-question">Accept <b>{plan.images:,}</b> remaining pseudo-labels (confidence at least '
            f"{plan.min_confidence:.2f}) as labels with source model-accepted? Their estimated accuracy: {accuracy}. "
            "One undo reverses all of them.</div>")


def _threshold(value: float | None) -> float | None:
    return None if value is None or value <= 0 else float(value)


def ui_accept_preview(service: Service, project: str | None, min_confidence: float | None,
                      target_accuracy: float | None,
                      request: gr.Request | None = None) -> tuple[str, Any, dict[str, Any] | None]:
    """The preview, and what Confirm will accept: this project, the threshold the preview named and
    its count (kept in the session, not read again from the fields)."""
    name = need_project(project)
    plan = service.labeling.accept_rest_preview(name, min_confidence=_threshold(min_confidence),
                                                target_accuracy=_threshold(target_accuracy),
                                                annotator=user_of(service, request))
    shown = {"project": name, "min_confidence": plan.min_confidence, "images": plan.images} if plan.images else None
    return preview_text(plan), gr.update(visible=plan.images > 0), shown


def ui_accept(service: Service, shown: dict[str, Any] | None,
              request: gr.Request | None = None) -> tuple[str, Any, None]:
    """Accept exactly what the preview showed; refused (nothing accepted) when the count changed since."""
    if not shown:
        raise InvalidInput("accept_rest: preview first (Accept the rest…), then confirm what it shows")
    done = service.labeling.accept_rest(str(shown["project"]), min_confidence=float(shown["min_confidence"]),
                                        expect_images=int(shown["images"]), annotator=user_of(service, request))
    return (f'<div id="cm-accept-done">Accepted {done.images:,} pseudo-labels (source model-accepted). '
            "Undo in the Label tab reverses all of them.</div>", gr.update(visible=False), None)


def _forget_preview() -> tuple[Any, None]:
    """A changed project or field: the preview no longer holds, so Confirm goes until the next one."""
    return gr.update(visible=False), None


def ui_audit_share(service: Service, project: str | None, share: float | None,
                   request: gr.Request | None = None) -> str:
    value = service.labeling.set_audit_share(need_project(project), float(share or 0.0) / 100,
                                             annotator=user_of(service, request))
    return f"{value:.0%} of the items served are now blind random audits."


def build(ctx: Ctx) -> dict[str, Any]:
    refresh = gr.Button("Refresh", elem_id="cm-dash-refresh")
    head = gr.HTML(elem_id="cm-dashboard")
    with gr.Row():
        per_class = gr.BarPlot(x="class", y="images", color="source", title="Images per class and label source",
                               x_label_angle=-30, elem_id="cm-plot-classes")
        sources = gr.BarPlot(x="source", y="images", title="Images per label source", elem_id="cm-plot-sources")
    with gr.Row():
        curve = gr.LinePlot(x="labels", y="accuracy", title="Label efficiency: accuracy on later labels",
                            x_title="labels learned from", y_title="accuracy", y_lim=[0, 1])
        timeline = gr.LinePlot(x="hour", y="decisions", color="annotator", title="Decisions per hour")
    with gr.Row():
        history = gr.LinePlot(x="labels", y="accuracy", color="series", y_lim=[0, 1], elem_id="cm-plot-estimate",
                              title="Estimated accuracy of the remaining pseudo-labels (audits, 95% interval)",
                              x_title="labels made", y_title="accuracy")
        saved = gr.LinePlot(x="labels", y="errors fixed", color="series", elem_id="cm-plot-saved",
                            title="Labels saved: errors fixed by the queue vs random order",
                            x_title="queue labels", y_title="errors fixed")
    people = gr.Dataframe(label="Throughput per annotator", interactive=False, elem_id="cm-throughput")
    outputs = [head, per_class, sources, curve, people, timeline, history, saved]
    _accept_rest(ctx)
    refresh.click(ctx.fn(ui_dashboard), [ctx.project], outputs, api_name="ui_dashboard",
                  api_visibility="undocumented")
    return {"show": (ctx.fn(ui_dashboard), [ctx.project], outputs)}


def _accept_rest(ctx: Ctx) -> None:
    """Accept the rest (admins): a preview that names the count and the estimate, then a confirmation."""
    with gr.Accordion("Stop labeling: accept the rest", open=False, elem_id="cm-accept-rest"):
        with gr.Row():
            min_confidence = gr.Number(label="only pseudo-labels at least this confident (0 = all)", value=0.0,
                                       minimum=0, maximum=1, elem_id="cm-accept-min")
            target = gr.Number(label="or: target accuracy (0 = none)", value=0.0, minimum=0, maximum=1,
                               elem_id="cm-accept-target")
            share = gr.Number(label="audit share, % of served items", value=5, minimum=0, maximum=100,
                              elem_id="cm-audit-share")
        with gr.Row():
            ask = gr.Button("Accept the rest…", elem_id="cm-accept-ask")
            confirm = gr.Button("Confirm: accept them", variant="stop", visible=False, elem_id="cm-accept-confirm")
            set_share = gr.Button("Set audit share", elem_id="cm-audit-set")
        message = gr.HTML(elem_id="cm-accept-message")
    shown = gr.State(None)  # what the last preview showed: Confirm accepts exactly that
    inputs = [ctx.project, min_confidence, target]
    ask.click(ctx.fn(ui_accept_preview), inputs, [message, confirm, shown], api_name="ui_accept_preview",
              api_visibility="undocumented")
    confirm.click(ctx.fn(ui_accept), [shown], [message, confirm, shown], api_name="ui_accept_rest",
                  api_visibility="undocumented")
    for field in (ctx.project, min_confidence, target):
        field.change(_forget_preview, None, [confirm, shown], api_visibility="private")
    set_share.click(ctx.fn(ui_audit_share), [ctx.project, share], [message], api_name="ui_audit_share",
                    api_visibility="undocumented")
