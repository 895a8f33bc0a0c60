"""The Review tab: human labels the model contradicts (out-of-fold) and near-duplicates labeled
differently, each with buttons to keep the label or take the other one."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from core.errors import InvalidInput
from core.service import Service
from webapp import handlers, render
from webapp.views import Ctx, need_project, tile_url

CHOICE_JS = "(project, reviewed, choice) => [project, reviewed, window.cmChoice || '']"


def ui_suspects(service: Service, project: str | None, reviewed: list[int]) -> str:
    project = need_project(project)
    report = handlers.suspects(service, project)
    ids = {s["image_id"] for s in report["suspects"]} | {i for p in report["near_duplicates"] for i in p["image_ids"]}
    files = service.image_files(sorted(ids))
    urls = {i: tile_url(service, files[i]) for i in ids if i in files}
    return render.suspects(report, url_of=urls.get, hidden=set(reviewed))


def ui_settle(service: Service, project: str | None, reviewed: list[int], choice: str,
              request: gr.Request | None = None) -> tuple[str, list[int], str]:
    """Apply a choice sent by a suspect's button: {"image_ids": [...], "label": ...}."""
    project = need_project(project)
    try:
        parsed = json.loads(choice)
        ids, label = [int(i) for i in parsed["image_ids"]], str(parsed["label"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("choice: expected {\"image_ids\": [...], \"label\": ...}") from exc
    handlers.label_many(service, project, ids, "correct", label, request)
    reviewed = [*reviewed, *ids]
    return ui_suspects(service, project, reviewed), reviewed, render.esc(f"Labeled {len(ids)} image(s) {label}.")


def build(ctx: Ctx) -> None:
    common: dict[str, Any] = {"api_visibility": "undocumented"}
    find = gr.Button("Find suspects", variant="primary")
    status = gr.HTML()
    cards = gr.HTML(elem_id="cm-review")
    reviewed = gr.State([])
    choice = gr.Textbox(visible="hidden")
    settle = gr.Button("settle", visible="hidden", elem_id="cm-review-btn")
    find.click(ctx.fn(ui_suspects), [ctx.project, reviewed], [cards], api_name="ui_suspects", **common)
    settle.click(ctx.fn(ui_settle), [ctx.project, reviewed, choice], [cards, reviewed, status], js=CHOICE_JS,
                 api_name="ui_settle", **common)
