"""The Label tab: one large image, the top-k proposals with confidence bars, why it was queued,
the class picker and the keys (webapp/keys.js). Each decision is committed and the queue re-ranked
by the service before the next item is rendered (one call: decide and lease the next items); the
items after it are prefetched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import gradio as gr

from core.errors import ImageError, InvalidInput
from core.service import Service
from core.usecases.results import Item, Reason
from webapp import render
from webapp.handlers import TOP_K, user_of
from webapp.views import Ctx, need_project
from webapp.wiring import SEQ_JS

DISPLAY_SIZE = 1024
PREFETCH = 3
Outputs = tuple[str, str, int | None]
VERBS = {"accept": "accepted as", "correct": "labeled", "skip": "skipped"}


def view(service: Service, project: str, items: Sequence[Item], *, annotator: str, last: str = "") -> Outputs:
    """(card html, side html, image id shown) of the first of `items`. Its display copy is made now if
    needed; the next ones are made in the background and referenced once ready, so the browser has them."""
    item, ahead = (items[0], items[1:]) if items else (None, ())
    url, error = None, None
    if item is not None:
        try:
            url = render.file_url(service.browse.thumbnail(item, size=DISPLAY_SIZE))
        except ImageError as exc:
            error = exc.reason
    ready = service.browse.prefetch_thumbnails(ahead, size=DISPLAY_SIZE)
    prefetch = [render.file_url(path) for path in ready if path is not None]
    return (render.card(item, url=url, error=error, prefetch=prefetch),
            render.side(item, service.labeling.progress(project, annotator=annotator), last=last),
            item.image_id if item else None)


def show_next(service: Service, project: str, annotator: str, *, last: str = "") -> Outputs:
    return view(service, project, service.labeling.next_items(project, annotator=annotator, n=1 + PREFETCH, k=TOP_K),
                annotator=annotator, last=last)


def ui_show(service: Service, project: str | None,
            request: gr.Request | None = None) -> tuple[str, str, int | None, str]:
    """The next item of the queue, and the model banner (why pseudo-labels are missing, if they are)."""
    if not project:
        return render.card(None, url=None, error=None), "", None, ""
    problem = service.jobs.known_model_problem(project)
    note = "Model not loaded, so no pseudo-labels yet; label by hand meanwhile (details: click)." if problem else ""
    return (*show_next(service, project, user_of(service, request)), render.banner(note, details=problem))


def decide_and_next(service: Service, project: str | None, current: int | None, action: str, label: str | None,
                    request: gr.Request | None) -> Outputs:
    project = need_project(project)
    if current is None:
        raise InvalidInput("image: there is no image on screen to decide on; open the Label tab again")
    user = user_of(service, request)
    decided = service.labeling.decide(project, image_id=int(current), action=action, label=label or None,
                                      annotator=user, next_n=1 + PREFETCH, k=TOP_K)
    shown = "" if action == "skip" else f" {decided.decision.label}"
    return view(service, project, decided.next, annotator=user, last=f"#{current} {VERBS[action]}{shown} · Z undoes it")


def ui_accept(service: Service, project: str | None, current: int | None, request: gr.Request | None = None) -> Outputs:
    return decide_and_next(service, project, current, "accept", None, request)


def ui_skip(service: Service, project: str | None, current: int | None, request: gr.Request | None = None) -> Outputs:
    return decide_and_next(service, project, current, "skip", None, request)


def ui_pick(service: Service, project: str | None, current: int | None, label: str,
            request: gr.Request | None = None) -> Outputs:
    if not label:
        raise InvalidInput("label: pick a class")
    return decide_and_next(service, project, current, "correct", label, request)


def ui_undo(service: Service, project: str | None, request: gr.Request | None = None) -> Outputs:
    """Undo the latest decision and show that image again, so it can be decided anew."""
    project = need_project(project)
    user = user_of(service, request)
    undone = service.labeling.undo(project, annotator=user)
    item = replace(service.labeling.item(project, undone.image_id, k=TOP_K), reason=Reason("undone", 0.0))
    ahead = [i for i in service.labeling.next_items(project, annotator=user, n=PREFETCH + 1, k=TOP_K)
             if i.image_id != item.image_id][:PREFETCH]
    last = (f"Undid your accept-the-rest: {undone.images:,} images are back in the queue" if undone.images > 1
            else f"Undid your {undone.action} of #{undone.image_id}")
    return view(service, project, [item, *ahead], annotator=user, last=last)


def ui_classes(service: Service, project: str | None) -> str:
    if not project:
        return ""
    return render.class_picker(service.projects.info(project).labels)


# The Label view's events run one at a time per browser session, in the order the page sent them
# (webapp.wiring.ordered): a key pressed right after switching tabs is never overwritten by the
# tab's slower first render. Sessions of other annotators run side by side.
LABEL_EVENTS: dict[str, Any] = {"concurrency_id": "label-view", "concurrency_limit": 8, "js": SEQ_JS}
PICK_JS = ("(seq, project, current, label) => "
           "[(window.cmSeq = (window.cmSeq || 0) + 1), project, current, window.cmPick || '']")


def build(ctx: Ctx) -> dict[str, Any]:
    from webapp.views import regions

    banner = gr.HTML(elem_id="cm-model-banner")
    with gr.Row():
        to_classify = gr.Button("Classify images", size="sm", elem_id="cm-mode-classify", min_width=120, scale=0)
        to_regions = gr.Button("Regions (R)", size="sm", elem_id="cm-mode-regions", min_width=120, scale=0)
    with gr.Row(equal_height=False) as classify_row:
        with gr.Column(scale=3):
            card = gr.HTML(render.card(None, url=None, error=None), elem_id="cm-card")
        with gr.Column(scale=2, min_width=320):
            side = gr.HTML(elem_id="cm-side")
            picker = gr.HTML(elem_id="cm-classes")
            with gr.Row():
                accept = gr.Button("Accept (Enter)", variant="primary", elem_id="cm-accept", min_width=90)
                skip = gr.Button("Skip (S)", elem_id="cm-skip", min_width=70)
                undo = gr.Button("Undo (Z)", elem_id="cm-undo", min_width=70)
            pick_label = gr.Textbox(visible="hidden")
            pick = gr.Button("pick", visible="hidden", elem_id="cm-pick-btn")
    current = gr.State(None)
    seq = gr.Number(None, visible="hidden")  # the page's event counter (LABEL_EVENTS' js)
    region = regions.build(ctx, seq=seq, events=LABEL_EVENTS)
    modes = [classify_row, region["row"]]
    to_classify.click(lambda: (gr.update(visible=True), gr.update(visible=False)), None, modes,
                      api_visibility="undocumented", show_progress="hidden")
    to_regions.click(lambda: (gr.update(visible=False), gr.update(visible=True)), None, modes,
                     api_visibility="undocumented", show_progress="hidden").then(
        region["enter"], [seq, ctx.project, current], region["shown"], api_name="ui_region_enter",
        api_visibility="undocumented", show_progress="hidden", **LABEL_EVENTS)
    shown = [card, side, current]
    common: dict[str, Any] = {"api_visibility": "undocumented", "show_progress": "hidden", **LABEL_EVENTS}
    accept.click(ctx.ordered(ui_accept, 3), [seq, ctx.project, current], shown, api_name="ui_accept", **common)
    skip.click(ctx.ordered(ui_skip, 3), [seq, ctx.project, current], shown, api_name="ui_skip", **common)
    undo.click(ctx.ordered(ui_undo, 3), [seq, ctx.project], shown, api_name="ui_undo", **common)
    pick.click(ctx.ordered(ui_pick, 3), [seq, ctx.project, current, pick_label], shown,
               api_name="ui_pick", **{**common, "js": PICK_JS})
    ctx.refresh_on_classes(ui_classes, [ctx.project], [picker])
    show = (ctx.ordered(ui_show, 4), [seq, ctx.project], [*shown, banner])
    ctx.on_project.append((*show, LABEL_EVENTS))
    return {"show": show, "events": LABEL_EVENTS}
