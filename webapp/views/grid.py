"""The Grid review tab: a page of unlabeled images predicted as one class, most confident first,
near-duplicates side by side. Accept the page at once, after clicking the odd ones out to mark
them; the marked ones can then be given their right class in one go."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.errors import InvalidInput
from core.service import Service
from core.usecases.browse.results import GridPage
from core.usecases.results import Decision
from webapp import render
from webapp.handlers import user_of
from webapp.views import TILE_SIZE, Ctx, marked_ids, need_project, tile_url

PAGE_SIZE = 48
MARKED_JS = ("(...args) => [...args.slice(0, -1), Array.from(document.querySelectorAll("
             "'#cm-grid .cm-tile.cm-marked')).map((t) => t.dataset.id).join(',')]")

GridOutputs = tuple[str, str, list[int], int]


def ui_grid(service: Service, project: str | None, label: str | None, page: float | None) -> GridOutputs:
    """(tiles, caption, ids on the page, page number shown from 1)."""
    if not project or not label:
        return render.tiles([], url_of=lambda _: None, caption=str, empty="Choose a class."), "", [], 1
    found = service.browse.grid(project, label, page=max(int(page or 1), 1) - 1, page_size=PAGE_SIZE)
    html = render.tiles(found.items, url_of=lambda item: tile_url(service, item),
                        caption=lambda item: f"{render.pct(item.confidence)} · #{item.image_id}",
                        empty=f"No unlabeled image is predicted as {label}.")
    caption = (f"{found.total:,} unlabeled images predicted as this class · page {found.page + 1} of "
               f"{found.pages}. Click the odd ones out to mark them.")
    _prefetch_next(service, project, found)
    return html, render.esc(caption), [i.image_id for i in found.items], found.page + 1


def _prefetch_next(service: Service, project: str, found: GridPage) -> None:
    if found.page + 1 < found.pages:
        following = service.browse.grid(project, found.label, page=found.page + 1, page_size=PAGE_SIZE)
        service.browse.prefetch_thumbnails(following.items, size=TILE_SIZE)


def ui_step(service: Service, project: str | None, label: str | None, page: float | None, step: int) -> GridOutputs:
    return ui_grid(service, project, label, max(int(page or 1) + step, 1))


def ui_prev(service: Service, project: str | None, label: str | None, page: float | None) -> GridOutputs:
    return ui_step(service, project, label, page, -1)


def ui_next(service: Service, project: str | None, label: str | None, page: float | None) -> GridOutputs:
    return ui_step(service, project, label, page, 1)


def ui_accept_rest(service: Service, project: str | None, label: str | None, page: float | None, ids: list[int],
                   marked: str, request: gr.Request | None = None) -> tuple[str, str, list[int], int, str]:
    """Label every unmarked tile of the page as the page's class."""
    project = need_project(project)
    chosen = [i for i in ids if i not in set(marked_ids(marked))]
    done = service.labeling.decide_many(project, image_ids=chosen, action="accept", label=label or None,
                                        annotator=user_of(service, request)) if chosen else []
    return *ui_grid(service, project, label, page), render.esc(f"Accepted {len(done)} images as {label}.")


def ui_fix_marked(service: Service, project: str | None, label: str | None, page: float | None, fix_to: str | None,
                  marked: str, request: gr.Request | None = None) -> tuple[str, str, list[int], int, str]:
    """Give the marked tiles the class chosen for them."""
    project = need_project(project)
    done = label_marked(service, project, marked_ids(marked), fix_to, request)
    return *ui_grid(service, project, label, page), render.esc(f"Labeled {len(done)} marked images {fix_to}.")


def label_marked(service: Service, project: str, image_ids: list[int], label: str | None,
                 request: gr.Request | None) -> list[Decision]:
    """Correct the marked images to `label` (the Grid and Search tabs' "label selected")."""
    if not image_ids:
        raise InvalidInput("image_ids: select at least one image")
    return service.labeling.decide_many(project, image_ids=image_ids, action="correct", label=label or None,
                                        annotator=user_of(service, request))


def ui_classes(service: Service, project: str | None) -> tuple[Any, Any]:
    names = list(service.projects.info(project).labels) if project else []
    return gr.update(choices=names, value=names[0] if names else None), gr.update(choices=names, value=None)


def build(ctx: Ctx) -> dict[str, Any]:
    common: dict[str, Any] = {"api_visibility": "undocumented"}
    with gr.Row():
        label = gr.Dropdown(label="Predicted class", choices=[], scale=2)
        page = gr.Number(1, label="Page", precision=0, minimum=1, scale=1)
        prev = gr.Button("Previous page", scale=1)
        nxt = gr.Button("Next page", scale=1)
    caption = gr.HTML()
    tiles = gr.HTML(elem_id="cm-grid")
    with gr.Row():
        accept = gr.Button("Accept all unmarked as this class", variant="primary")
        fix_to = gr.Dropdown(label="Label the marked ones as", choices=[])
        fix = gr.Button("Label marked")
    status = gr.HTML()
    ids = gr.State([])
    marked = gr.Textbox(visible="hidden")
    shown = [tiles, caption, ids, page]
    ctx.refresh_on_classes(ui_classes, [ctx.project], [label, fix_to])
    label.change(ctx.fn(ui_grid), [ctx.project, label, gr.State(1)], shown, api_name="ui_grid", **common)
    page.submit(ctx.fn(ui_grid), [ctx.project, label, page], shown, api_name="ui_grid_page", **common)
    prev.click(ctx.fn(ui_prev), [ctx.project, label, page], shown, api_name="ui_grid_prev", **common)
    nxt.click(ctx.fn(ui_next), [ctx.project, label, page], shown, api_name="ui_grid_next", **common)
    accept.click(ctx.fn(ui_accept_rest), [ctx.project, label, page, ids, marked], [*shown, status], js=MARKED_JS,
                 api_name="ui_grid_accept", **common)
    fix.click(ctx.fn(ui_fix_marked), [ctx.project, label, page, fix_to, marked], [*shown, status], js=MARKED_JS,
              api_name="ui_grid_fix", **common)
    return {"show": (ctx.fn(ui_grid), [ctx.project, label, page], shown)}
