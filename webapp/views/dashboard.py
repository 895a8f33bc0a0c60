"""The Dashboard tab: progress, labels per class and per source, the estimated accuracy of the
pseudo-labels, the label-efficiency curve and per-annotator throughput, as plots."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from core.service import Service
from core.usecases.browse.results import Dashboard
from webapp import render
from webapp.views import Ctx, need_project

SOURCES = ("human", "import", "review", "model")


def summary(data: Dashboard) -> str:
    p, acc, clf = data.progress, data.accuracy, data.classifier
    share = p.labeled / p.images if p.images else 0.0
    lines = [f'<div class="cm-progress"><div style="width:{100 * share:.1f}%"></div></div>',
             f'<div class="cm-counts" id="cm-dash-progress">{p.labeled:,} of {p.images:,} images labeled '
             f'({render.pct(share)}) · {p.embedded:,} embedded · {p.skipped:,} skipped</div>']
    if acc["estimate"] is None:
        lines.append("<div>Estimated pseudo-label accuracy: no human label made after a prediction run yet.</div>")
    else:
        lines.append(f'<div>Estimated pseudo-label accuracy: <b>{render.pct(acc["estimate"])}</b> (95% interval '
                     f'{render.pct(acc["low"])} to {render.pct(acc["high"])}), from {acc["compared"]:,} human labels '
                     "made after the predictions they are compared with.</div>")
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


def ui_dashboard(service: Service, project: str | None) -> tuple[Any, ...]:
    data = service.browse.dashboard(need_project(project))
    return (summary(data), *frames(data))


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
    people = gr.Dataframe(label="Throughput per annotator", interactive=False, elem_id="cm-throughput")
    outputs = [head, per_class, sources, curve, people, timeline]
    refresh.click(ctx.fn(ui_dashboard), [ctx.project], outputs, api_name="ui_dashboard",
                  api_visibility="undocumented")
    return {"show": (ctx.fn(ui_dashboard), [ctx.project], outputs)}
