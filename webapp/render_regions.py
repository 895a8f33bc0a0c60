"""HTML of the Label view's region mode. The image is referenced by URL (the browser caches it);
masks travel as small PNG data URLs (a few KB: SAM's candidates, or all instances in one picture),
points and the box as percentages. User text goes through `esc`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.usecases.regions.results import (
    ImageRegions,
    InstanceInfo,
    LabelScore,
    ProposalInfo,
    Segmentation,
    instance_colour,
)
from webapp import render
from webapp.render import esc, pct, top_k

REGION_KEYS = (
    ("click", "add a point on the object"), ("Shift+click or right-click", "a point that is NOT the object"),
    ("drag", "draw a box"), ("M", "next of SAM's masks"), ("Enter", "save the mask with the proposed class"),
    ("1-9", "save it with that class (or relabel the selected instance)"), ("Esc", "clear the clicks"),
    ("Z or Backspace", "remove the last click, or undo your last region action"),
    ("Delete", "delete the selected instance"), ("P", "propose regions on this image"),
    ("V", "the next proposal to review (this image's, then the project's least certain)"),
    ("X", "reject the proposal shown"), ("N / B", "next / previous image"), ("R", "back to classifying"),
)


def _percent(value: float, total: int) -> str:
    return f"{100 * value / max(total, 1):.3f}%"


def card(view: ImageRegions | None, *, url: str | None, clicked: Segmentation | None = None,
         proposal: ProposalInfo | None = None, note: str = "") -> str:
    """The image with every instance drawn over it, SAM's candidate masks (one shown at a time),
    the clicks and the box; data attributes tell the page the image size and the mask shown."""
    if view is None:
        return ('<div id="cm-rcard" class="cm-rcard"><div class="cm-empty">'
                f'{esc(note or "No image to segment in this project.")}</div></div>')
    image = view.image
    width, height = image.width, image.height
    candidates = clicked.masks if clicked is not None else ()
    choice = clicked.best if clicked is not None else None
    layers = [f'<img class="cm-rimg" src="{esc(url)}" alt="{esc(image.path)}" draggable="false">' if url else
              '<div class="cm-empty">Cannot show this image.</div>']
    if view.overlay is not None:
        layers.append(f'<img class="cm-rlayer cm-rinst" src="{view.overlay_url}" alt="" draggable="false">')
    for cand in candidates:
        on = " cm-on" if cand.index == choice else ""
        layers.append(f'<img class="cm-rlayer cm-cand{on}" data-k="{cand.index}" '
                      f'src="{cand.png_url}" alt="" draggable="false">')
    if proposal is not None:
        layers.append(f'<img class="cm-rlayer cm-cand cm-on cm-prop" data-k="0" src="{proposal.png_url}" '
                      'alt="" draggable="false">')
    layers += _prompt_marks(clicked.prompts if clicked is not None else {}, width, height)
    attrs = (f'data-image-id="{image.image_id}" data-width="{width}" data-height="{height}" '
             f'data-labels="{"pending" if candidates else ""}" '
             f'data-choice="{"" if choice is None else int(choice)}" '
             f'data-proposal="{"" if proposal is None else proposal.id}"')
    caption = f'#{image.image_id} · {esc(image.path)} · {width}×{height}'
    return (f'<div id="cm-rcard" class="cm-rcard" {attrs}><div class="cm-rstage">{"".join(layers)}'
            f'<div class="cm-rdrag" hidden></div></div><div class="cm-path">{caption}</div>'
            f'{_candidate_line(candidates, choice, proposal)}'
            f'{f"<div class=cm-rnote>{esc(note)}</div>" if note else ""}</div>')


def stamp(card_html: str, nonce: object) -> str:
    """Echo the request's number into the card: the page trusts only the answer to its latest request."""
    number = int(nonce) if isinstance(nonce, int | float) else -1
    return card_html.replace('id="cm-rcard" ', f'id="cm-rcard" data-nonce="{number}" ', 1)


def _prompt_marks(prompts: dict[str, Any], width: int, height: int) -> list[str]:
    marks = []
    for x, y, positive in prompts.get("points") or []:
        kind = "cm-pos" if int(positive) else "cm-neg"
        marks.append(f'<span class="cm-dot {kind}" style="left:{_percent(x, width)};top:{_percent(y, height)}">'
                     "</span>")
    box = prompts.get("box")
    if box:
        x0, y0, x1, y1 = box
        marks.append(f'<span class="cm-rbox" style="left:{_percent(x0, width)};top:{_percent(y0, height)};'
                     f'width:{_percent(x1 - x0, width)};height:{_percent(y1 - y0, height)}"></span>')
    return marks


def _candidate_line(candidates: Sequence[Any], choice: int | None, proposal: ProposalInfo | None) -> str:
    if proposal is not None:
        return (f'<div class="cm-rcands">Proposal #{proposal.id} · SAM IoU {proposal.predicted_iou:.2f}'
                f' · area {proposal.area:,} px · <kbd>Enter</kbd> accept · <kbd>X</kbd> reject</div>')
    if not candidates:
        return ""
    buttons = "".join(
        f'<button type="button" class="cm-mchoice{" cm-on" if c.index == choice else ""}" data-k="{c.index}"'
        f' title="area {c.area:,} px">mask {c.index + 1} · {c.score:.2f}</button>'
        for c in candidates)
    return f'<div class="cm-rcands">{buttons} <span class="cm-hint"><kbd>M</kbd> next mask</span></div>'


def side(instances: Sequence[InstanceInfo], *, top: Sequence[LabelScore] | None = None, open_proposals: int = 0,
         last: str = "", model_note: str = "") -> str:
    """Proposed classes for the mask on screen, the image's instances (click one to select it) and
    the open proposals of this image."""
    parts = []
    if model_note:
        parts.append(f'<div class="cm-banner" role="status">{esc(model_note)}</div>')
    if top is not None:
        parts.append('<div class="cm-reason">CLIP proposes for this mask:</div>' + top_k(top) if top else
                     '<div class="cm-reason">No class proposal (no CLIP model yet): pick a class with 1-9.</div>')
    parts.append(_instance_list(instances))
    parts.append(f'<div class="cm-reason">{open_proposals} open region proposal{"s" if open_proposals != 1 else ""}'
                 " on this image.</div>")
    if last:
        parts.append(f'<div class="cm-last" role="status">{esc(last)}</div>')
    return "".join(parts)


def _instance_list(instances: Sequence[InstanceInfo]) -> str:
    if not instances:
        return '<div class="cm-reason cm-noinst">No instances on this image yet.</div>'
    rows = []
    for k, inst in enumerate(instances):
        r, g, b = instance_colour(k)
        conf = f" · {pct(inst.label_confidence)}" if inst.label_confidence is not None else ""
        rows.append(
            f'<li class="cm-inst" data-inst="{inst.id}" data-bbox="{",".join(str(v) for v in inst.bbox)}">'
            f'<span class="cm-swatch" style="background:rgb({r},{g},{b})"></span>'
            f'<button type="button" class="cm-inst-pick" data-inst="{inst.id}">#{inst.id} '
            f'<b>{esc(inst.label or "")}</b>{esc(conf)} · {inst.area:,} px</button>'
            f'<button type="button" class="cm-inst-del" data-inst="{inst.id}" title="delete">✕</button></li>')
    return f'<div class="cm-reason">Instances ({len(instances)}):</div><ul class="cm-insts">{"".join(rows)}</ul>'


def class_buttons(labels: Sequence[str]) -> str:
    """The classes for regions, numbered 1-9, and the region keys."""
    buttons = render.class_buttons(labels, css="cm-class cm-rclass")
    keys = "".join(f"<tr><td><kbd>{esc(k)}</kbd></td><td>{esc(v)}</td></tr>" for k, v in REGION_KEYS)
    return (f'<div class="cm-classlist">{buttons}</div>'
            '<div class="cm-hint">Click the object · <kbd>Enter</kbd> save · <kbd>1</kbd>-<kbd>9</kbd> class · '
            '<kbd>M</kbd> mask · <kbd>Z</kbd> undo · <kbd>P</kbd> propose · <kbd>?</kbd> help</div>'
            f'<div id="cm-rhelp" class="cm-help" hidden><b>Region keys</b><table>{keys}</table></div>')
