"""The Label view's region mode: click (or drag a box) on the image, Segment Anything answers with
its candidate masks as small PNGs, CLIP proposes a class for the chosen mask, and Enter or a number
key saves it as an instance. The page keeps the clicks (webapp/regions.js) and sends all of them
with each request, so the server holds nothing between clicks. Region proposals of the automatic
mask generator are reviewed in the same place (Enter accepts, X rejects)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.errors import InvalidInput, ModelLoadError
from core.service import Service
from core.usecases.regions.results import LabelScore, ProposalInfo, Segmentation
from webapp import render_regions
from webapp.handlers import json_object, user_of
from webapp.render import file_url
from webapp.views import Ctx, need_project

WARM_AHEAD = 3
TOP_K = 5
Shown = tuple[Any, Any, Any]


def payload_of(text: str | None) -> dict[str, Any]:
    return json_object(text, field="payload")


def prompts_of(data: dict[str, Any]) -> dict[str, Any]:
    return {"points": data.get("points") or [], "box": data.get("box")}


def show(service: Service, project: str, image_id: int | None, user: str, *, clicked: Segmentation | None = None,
         proposal: ProposalInfo | None = None, top: tuple[LabelScore, ...] | None = None, last: str = "") -> Shown:
    """(card, side, image id) for an image: its instances, and what is being decided on it."""
    if image_id is None:
        return render_regions.card(None, url=None), render_regions.side((), last=last), None
    view = service.regions.view(project, image_id, annotator=user)
    waiting = ("Segment Anything is encoding this image in the background (once per image); the first click waits "
               "for it.") if view.encoding else ""
    url = None if view.display is None else file_url(view.display)
    card = render_regions.card(view, url=url, clicked=clicked, proposal=proposal, note=waiting)
    note = view.problem or ""
    side = render_regions.side(view.instances, top=top, open_proposals=view.open_proposals, last=last,
                               model_note=f"Segment Anything is not loaded: {note}" if note else "")
    return card, side, view.image.image_id


def next_proposal(service: Service, project: str, image_id: int, user: str, last: str, *,
                  anywhere: bool = False) -> Shown:
    """The least certain open proposal of this image (after a decision: the image stays, so its
    result shows once its proposals are done); with `anywhere` (V), when this image has none left,
    the least certain one of the whole project (its image opens)."""
    regions = service.regions
    found = regions.next_proposals(project, image_id=image_id, limit=1, k=TOP_K, png=True, annotator=user)
    if not found and anywhere:
        found = regions.next_proposals(project, limit=1, k=TOP_K, png=True, annotator=user)
    if not found:
        return show(service, project, image_id, user, last=last)
    chosen = found[0]
    if chosen.image_id != image_id:
        regions.warm_ahead(project, chosen.image_id, count=WARM_AHEAD, annotator=user)
    return show(service, project, chosen.image_id, user, proposal=chosen, top=chosen.top, last=last)


# -- actions (one per payload "action") -------------------------------------------------------


def act_open(service: Service, project: str, image_id: int | None, data: dict[str, Any], user: str) -> Shown:
    chosen = data.get("image") or image_id
    if chosen is None:
        chosen = service.regions.neighbour(project, None, 1, annotator=user)
    if chosen is not None:
        service.regions.warm_ahead(project, int(chosen), count=WARM_AHEAD, annotator=user)
    return show(service, project, None if chosen is None else int(chosen), user)


def act_click(service: Service, project: str, image_id: int, data: dict[str, Any], user: str) -> Shown:
    result = service.regions.segment(project, image_id, prompts_of(data), annotator=user)
    return show(service, project, image_id, user, clicked=result, last=f"SAM answered in {result.ms:.0f} ms")


def act_labels(service: Service, project: str, image_id: int, data: dict[str, Any], user: str) -> Shown:
    """CLIP's classes for the mask on screen: only the side panel changes."""
    regions = service.regions
    top = regions.candidate_labels(project, image_id, prompts_of(data), data.get("choice"), k=TOP_K, annotator=user)
    view = regions.view(project, image_id, annotator=user)
    return gr.skip(), render_regions.side(view.instances, top=top, open_proposals=view.open_proposals), gr.skip()


def act_accept(service: Service, project: str, image_id: int, data: dict[str, Any], user: str) -> Shown:
    label = data.get("label") or None
    if data.get("proposal"):
        result = service.regions.decide_proposal(project, int(data["proposal"]), accept=True, label=label,
                                                 annotator=user)
        inst = result.instance
        said = "" if inst is None else f" as #{inst.id} {inst.label}"
        return next_proposal(service, project, image_id, user, f"Accepted proposal{said}")
    inst = service.regions.add_instance(project, image_id, prompts_of(data), choice=data.get("choice"), label=label,
                                        annotator=user)
    return show(service, project, image_id, user, last=f"Saved #{inst.id} {inst.label} · Z undoes it")


def act_reject(service: Service, project: str, image_id: int, data: dict[str, Any], user: str) -> Shown:
    if not data.get("proposal"):
        raise InvalidInput("proposal: no region proposal is shown; press P to propose regions on this image")
    service.regions.decide_proposal(project, int(data["proposal"]), accept=False, annotator=user)
    return next_proposal(service, project, image_id, user, f"Rejected proposal #{int(data['proposal'])}")


def act_proposal(service: Service, project: str, image_id: int, data: dict[str, Any], user: str) -> Shown:
    """The next proposal to review: this image's first, then the project's least certain."""
    return next_proposal(service, project, image_id, user, "", anywhere=True)


def act_relabel(service: Service, project: str, image_id: int, data: dict[str, Any], user: str) -> Shown:
    if not data.get("selected") or not data.get("label"):
        raise InvalidInput("instance: select an instance in the list, then press a class number")
    inst = service.regions.relabel_instance(project, int(data["selected"]), data["label"], annotator=user)
    return show(service, project, image_id, user, last=f"#{inst.id} is now {inst.label}")


def act_delete(service: Service, project: str, image_id: int, data: dict[str, Any], user: str) -> Shown:
    if not data.get("selected"):
        raise InvalidInput("instance: select an instance in the list first")
    inst = service.regions.delete_instance(project, int(data["selected"]), annotator=user)
    return show(service, project, image_id, user, last=f"Deleted #{inst.id} {inst.label} · Z undoes it")


def act_undo(service: Service, project: str, image_id: int, data: dict[str, Any], user: str) -> Shown:
    result = service.regions.undo(project, annotator=user)
    return show(service, project, result.image_id, user, last=f"Undid your {result.undone.replace('_', ' ')}")


def act_step(step: int) -> Any:
    def act(service: Service, project: str, image_id: int | None, data: dict[str, Any], user: str) -> Shown:
        following = service.regions.neighbour(project, image_id, step, annotator=user)
        return act_open(service, project, None, {"image": following}, user)
    return act


ACTIONS = {"open": act_open, "click": act_click, "labels": act_labels, "accept": act_accept, "reject": act_reject,
           "proposal": act_proposal, "relabel": act_relabel, "delete": act_delete, "undo": act_undo,
           "next": act_step(1), "prev": act_step(-1)}
NEEDS_IMAGE = set(ACTIONS) - {"open", "undo", "next", "prev"}


def ui_region(service: Service, project: str | None, image_id: int | None, payload: str,
              request: gr.Request | None = None) -> Shown:
    """Every region action of the page: the payload names it and carries the clicks."""
    project = need_project(project)
    data = payload_of(payload)
    action = data.get("action")
    if action not in ACTIONS:
        raise InvalidInput(f"action: unknown '{action}' (valid: {', '.join(ACTIONS)})")
    if action in NEEDS_IMAGE and image_id is None:
        raise InvalidInput("image: no image is shown in region mode")
    try:
        card, side, shown = ACTIONS[action](service, project, image_id, data, user_of(service, request))
        return (render_regions.stamp(card, data.get("nonce")) if isinstance(card, str) else card), side, shown
    except ModelLoadError as exc:
        raise ModelLoadError(f"Segment Anything is not loaded, so clicks cannot make masks: {exc}") from exc


def ui_region_propose(service: Service, project: str | None, image_id: int | None, request: gr.Request | None = None,
                      progress: gr.Progress = gr.Progress()) -> Shown:  # noqa: B008  (Gradio's progress idiom)
    """Propose regions on the image shown (automatic mask generator + CLIP), then show the least
    certain open proposal."""
    project = need_project(project)
    if image_id is None:
        raise InvalidInput("image: no image is shown in region mode")
    progress(0.0, desc="Proposing regions (SAM mask generator, then CLIP)")
    user = user_of(service, request)
    summary = service.regions.propose(project, image_ids=[image_id], annotator=user)
    note = f"{summary.proposed} proposed, {summary.weak} weak and {summary.duplicates} known regions left out"
    if summary.errors:
        note += f"; {summary.errors[0]['reason']}"
    return next_proposal(service, project, image_id, user, note)


def ui_propose_all(service: Service, project: str | None, request: gr.Request | None = None) -> str:
    job = service.regions.start_propose_all(need_project(project), annotator=user_of(service, request))
    return f"Proposing regions on every image in the background (job {job.job_id}); progress above."


def ui_prepare_all(service: Service, project: str | None, request: gr.Request | None = None) -> str:
    job = service.regions.start_embed_all(need_project(project), annotator=user_of(service, request))
    return (f"Encoding every image for Segment Anything in the background (job {job.job_id}); progress above. "
            "Clicks on encoded images never wait.")


def ui_region_classes(service: Service, project: str | None) -> str:
    if not project:
        return ""
    return render_regions.class_buttons(list(service.projects.info(project).labels))


def ui_region_enter(service: Service, project: str | None, current: int | None,
                    request: gr.Request | None = None) -> Shown:
    """Region mode opens on the image the Label view shows (else the project's first image)."""
    project = need_project(project)
    return act_open(service, project, current, {}, user_of(service, request))


def ui_region_reset(service: Service, project: str | None) -> Shown:
    """Another project was opened: region mode starts again from its Regions button."""
    return render_regions.card(None, url=None, note="Press Regions (R) to segment this project's images."), "", None


# -- layout and wiring ---------------------------------------------------------------------------

ACT_JS = ("(seq, project, image, payload) => "
          "[(window.cmSeq = (window.cmSeq || 0) + 1), project, image, window.cmRegionPayload || '{}']")
SEND_JS = "() => {{ window.cmRegionSend && window.cmRegionSend('{action}'); }}"


def build(ctx: Ctx, *, seq: gr.Number, events: dict[str, Any]) -> dict[str, Any]:
    with gr.Row(equal_height=False, visible=False) as row:
        with gr.Column(scale=3):
            card = gr.HTML(ui_region_reset(ctx.service, None)[0], elem_id="cm-rcard-box")
        with gr.Column(scale=2, min_width=320):
            side = gr.HTML(elem_id="cm-rside")
            classes = gr.HTML(elem_id="cm-rclasses")
            with gr.Row():
                save = gr.Button("Save mask (Enter)", variant="primary", elem_id="cm-rsave", min_width=90)
                propose = gr.Button("Propose regions (P)", elem_id="cm-rpropose", min_width=90)
                undo = gr.Button("Undo (Z)", elem_id="cm-rundo", min_width=70)
            with gr.Row():
                back = gr.Button("◀ Image (B)", elem_id="cm-rprev", min_width=70)
                forward = gr.Button("Image ▶ (N)", elem_id="cm-rnext", min_width=70)
                review = gr.Button("Next proposal (V)", elem_id="cm-rreview", min_width=90)
                reject = gr.Button("Reject proposal (X)", elem_id="cm-rreject", min_width=90)
            with gr.Row():
                prepare_all = gr.Button("Prepare every image (encode in background)", size="sm",
                                        elem_id="cm-rprepare-all")
                propose_all = gr.Button("Propose regions on every image (background)", size="sm",
                                        elem_id="cm-rpropose-all")
            status = gr.HTML(elem_id="cm-rstatus")
            payload = gr.Textbox(visible="hidden")
            act = gr.Button("act", visible="hidden", elem_id="cm-ract-btn")
            labels = gr.Button("labels", visible="hidden", elem_id="cm-rlabels-btn")
    image = gr.State(None)
    shown = [card, side, image]
    common: dict[str, Any] = {"api_visibility": "undocumented", "show_progress": "hidden", **events, "js": ACT_JS}
    act.click(ctx.ordered(ui_region, 3), [seq, ctx.project, image, payload], shown, api_name="ui_region", **common)
    labels.click(ctx.ordered(ui_region, 3), [seq, ctx.project, image, payload], shown, api_name="ui_region_labels",
                 **common)
    for button, action in ((save, "accept"), (undo, "undo"), (back, "prev"), (forward, "next"), (reject, "reject"),
                           (review, "proposal")):
        button.click(None, js=SEND_JS.format(action=action))
    propose.click(ctx.fn(ui_region_propose), [ctx.project, image], shown, api_name="ui_region_propose",
                  api_visibility="undocumented", show_progress="full")
    propose_all.click(ctx.fn(ui_propose_all), [ctx.project], [status], api_name="ui_propose_all",
                      api_visibility="undocumented")
    prepare_all.click(ctx.fn(ui_prepare_all), [ctx.project], [status], api_name="ui_prepare_all",
                      api_visibility="undocumented")
    ctx.refresh_on_classes(ui_region_classes, [ctx.project], [classes])
    ctx.refresh_on_project(ui_region_reset, [ctx.project], shown)
    return {"row": row, "shown": shown, "enter": ctx.ordered(ui_region_enter, 3)}
