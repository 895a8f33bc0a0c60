"""The Search tab: type what the images should show, see the best matches (CLIP text-to-image
cosine on the cached embeddings), click to select some, and label the selection at once."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.service import Service
from webapp import render
from webapp.views import Ctx, marked_ids, need_project, tile_url
from webapp.views.grid import label_marked

LIMIT = 48
SELECTED_JS = ("(...args) => [...args.slice(0, -1), Array.from(document.querySelectorAll("
               "'#cm-search .cm-tile.cm-marked')).map((t) => t.dataset.id).join(',')]")


def ui_search(service: Service, project: str | None, text: str, unlabeled_only: bool) -> str:
    project = need_project(project)
    found = service.browse.search(project, text, limit=LIMIT, unlabeled_only=unlabeled_only)
    return render.tiles(found.items, url_of=lambda item: tile_url(service, item),
                        caption=lambda item: f"{item.score:.3f} · {item.label or 'unlabeled'}",
                        empty="No images to search yet: import and embed some first.")


def ui_label_selected(service: Service, project: str | None, text: str, unlabeled_only: bool, label: str | None,
                      selected: str, request: gr.Request | None = None) -> tuple[str, str]:
    project = need_project(project)
    done = label_marked(service, project, marked_ids(selected), label, request)
    return ui_search(service, project, text, unlabeled_only), render.esc(f"Labeled {len(done)} images {label}.")


def ui_classes(service: Service, project: str | None) -> Any:
    names = list(service.projects.info(project).labels) if project else []
    return gr.update(choices=names, value=None)


def build(ctx: Ctx) -> None:
    common: dict[str, Any] = {"api_visibility": "undocumented"}
    with gr.Row():
        text = gr.Textbox(label="Find images showing...", placeholder="a dog on a beach", scale=3)
        unlabeled = gr.Checkbox(False, label="Unlabeled only", scale=1)
        go = gr.Button("Search", variant="primary", scale=1)
    tiles = gr.HTML(elem_id="cm-search")
    with gr.Row():
        label = gr.Dropdown(label="Label the selected images as", choices=[])
        apply = gr.Button("Label selected")
    status = gr.HTML()
    selected = gr.Textbox(visible="hidden")
    gr.on([go.click, text.submit], ctx.fn(ui_search), [ctx.project, text, unlabeled], [tiles], api_name="ui_search",
          **common)
    ctx.refresh_on_classes(ui_classes, [ctx.project], [label])
    apply.click(ctx.fn(ui_label_selected), [ctx.project, text, unlabeled, label, selected], [tiles, status],
                js=SELECTED_JS, api_name="ui_search_label", **common)
