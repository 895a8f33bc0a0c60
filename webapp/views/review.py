"""The Review tab: overlap conflicts (who said what), human labels the model contradicts
(out-of-fold) and near-duplicates labeled differently, each with buttons that record a reviewer's
final label; and the agreement between annotators (kappas, confusion per pair)."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from core.errors import InvalidInput
from core.service import Service
from webapp import render, team
from webapp.views import Ctx, need_project, tile_url

CHOICE_JS = "(project, reviewed, choice) => [project, reviewed, window.cmChoice || '']"


def ui_suspects(service: Service, project: str | None, reviewed: list[int],
                request: gr.Request | None = None) -> str:
    project = need_project(project)
    report = team.review_queue(service, project, 50, request)
    ids = ({s["image_id"] for s in report["suspects"]} | {c["image_id"] for c in report["conflicts"]}
           | {i for p in report["near_duplicates"] for i in p["image_ids"]})
    files = service.browse.image_files(sorted(ids))
    urls = {i: tile_url(service, files[i]) for i in ids if i in files}
    return render.suspects(report, url_of=urls.get, hidden=set(reviewed))


def ui_settle(service: Service, project: str | None, reviewed: list[int], choice: str,
              request: gr.Request | None = None) -> tuple[str, list[int], str]:
    """Apply a choice sent by a card's button ({"image_ids": [...], "label": ...}) as the reviewer's
    final label of each image (reviewers and admins only; the service checks)."""
    project = need_project(project)
    try:
        parsed = json.loads(choice)
        ids, label = [int(i) for i in parsed["image_ids"]], str(parsed["label"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("choice: expected {\"image_ids\": [...], \"label\": ...}") from exc
    for image_id in ids:
        team.resolve(service, project, image_id, label, request)
    reviewed = [*reviewed, *ids]
    return (ui_suspects(service, project, reviewed, request), reviewed,
            render.esc(f"Labeled {len(ids)} image(s) {label} (the reviewer's final label)."))


def ui_agreement(service: Service, project: str | None, request: gr.Request | None = None) -> str:
    return render.agreement(team.agreement(service, need_project(project), request))


def build(ctx: Ctx) -> None:
    common: dict[str, Any] = {"api_visibility": "undocumented"}
    with gr.Row():
        find = gr.Button("Load the review queue", variant="primary")
        measure = gr.Button("Agreement between annotators", elem_id="cm-agreement-btn")
    status = gr.HTML()
    cards = gr.HTML(elem_id="cm-review")
    agreement = gr.HTML(elem_id="cm-agreement")
    reviewed = gr.State([])
    choice = gr.Textbox(visible="hidden")
    settle = gr.Button("settle", visible="hidden", elem_id="cm-review-btn")
    find.click(ctx.fn(ui_suspects), [ctx.project, reviewed], [cards], api_name="ui_suspects", **common)
    settle.click(ctx.fn(ui_settle), [ctx.project, reviewed, choice], [cards, reviewed, status], js=CHOICE_JS,
                 api_name="ui_settle", **common)
    measure.click(ctx.fn(ui_agreement), [ctx.project], [agreement], api_name="ui_agreement", **common)
