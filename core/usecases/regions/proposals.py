"""Region proposals: Segment Anything's automatic mask generator finds the regions of an image,
CLIP names each one, regions whose best class is weak are dropped, and the rest wait in a queue,
the least certain first (margin between the two best classes), like images in the labeling queue.
A person accepts a proposal (it becomes an instance) or rejects it; both are remembered, so a new
proposal run does not offer the same region again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import Conflict, ImageError, InvalidInput, NotFound
from core.store import regions as store
from core.store.schema import Image, RegionProposal

if TYPE_CHECKING:
    from core.regions import Regions

DUPLICATE_IOU = 0.8         # a region this close to a known instance or proposal is not proposed again
DEFAULT_MIN_CONFIDENCE = 0.3
PRED_IOU_THRESH = 0.8       # the mask generator's own filters (SAM's defaults); 0 turns one off
STABILITY_THRESH = 0.85
ProgressFn = Callable[[int, int], None]


@dataclass
class ProposeSummary:
    images: int = 0
    proposed: int = 0
    weak: int = 0           # dropped: CLIP's best class below min_confidence
    duplicates: int = 0     # dropped: already an instance or a proposal (open, accepted or rejected)
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def propose(regions: Regions, project: str, *, image_ids: Sequence[int] | None = None,
            min_confidence: float = DEFAULT_MIN_CONFIDENCE, points_per_side: int = 16, max_regions: int = 50,
            pred_iou_thresh: float = PRED_IOU_THRESH, stability_score_thresh: float = STABILITY_THRESH,
            annotator: str | None = None, progress: bool = False, on_progress: ProgressFn | None = None
            ) -> ProposeSummary:
    """Propose regions on these images (default: every usable image of the project). Each image is
    committed on its own, so an interrupted run keeps what it found; a bad image is reported and the
    run goes on. `pred_iou_thresh` and `stability_score_thresh` are the mask generator's filters."""
    from tqdm import tqdm

    generator = _generator_options(points_per_side=points_per_side, max_masks=max_regions,
                                   pred_iou_thresh=pred_iou_thresh, stability_score_thresh=stability_score_thresh)
    if not 0.0 <= min_confidence <= 1.0:
        raise InvalidInput(f"--min-confidence: {min_confidence} is not between 0 and 1")
    ids = _image_ids(regions, project, image_ids, annotator)
    summary = ProposeSummary()
    for done, image_id in enumerate(tqdm(ids, desc="propose regions", unit="img", disable=not progress), start=1):
        try:
            _propose_image(regions, project, image_id, summary, min_confidence=min_confidence, generator=generator)
        except (ImageError, NotFound) as exc:
            summary.errors.append({"file": f"image #{image_id}", "reason": str(exc)})
        summary.images += 1
        if on_progress is not None:
            on_progress(done, len(ids))
    return summary


def _generator_options(**options: Any) -> dict[str, Any]:
    """The mask generator's options, checked before any image is touched."""
    for flag, name in (("--points-per-side", "points_per_side"), ("--max-regions", "max_masks")):
        value = options[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidInput(f"{flag}: {value!r} is not an integer >= 1")
    for name in ("pred_iou_thresh", "stability_score_thresh"):
        if not 0.0 <= options[name] <= 1.0:
            flag = "--" + name.replace("_", "-")
            raise InvalidInput(f"{flag}: {options[name]} is not between 0 and 1 (0 turns the filter off)")
    return options


def _image_ids(regions: Regions, project: str, image_ids: Sequence[int] | None, annotator: str | None) -> list[int]:
    from sqlalchemy import select

    with regions.service.sessions.begin() as session:
        project_id = regions.service.project(session, project).id
        regions.service.actor(session, annotator, "label")
        if image_ids is not None:
            return [int(i) for i in image_ids]
        query = select(Image.id).where(Image.project_id == project_id, Image.status == "ok").order_by(Image.id)
        return list(session.scalars(query))


def _propose_image(regions: Regions, project: str, image_id: int, summary: ProposeSummary, *,
                   min_confidence: float, generator: dict[str, Any]) -> None:
    from core.segment.masks import resize_mask
    from core.segment.naming import region_probs

    image = regions.image(project, image_id)
    pixels = regions.pixels(image)
    segmenter = regions.segmenter()
    found = segmenter.generate(pixels, embedding=regions.embedding(image), **generator)
    fresh = _new_regions(regions, image, found)
    summary.duplicates += len(found) - len(fresh)
    display = regions.display_pixels(image)  # named like a clicked mask: on the display copy
    shown = [resize_mask(r["segmentation"], display.shape[:2]) for r in fresh]
    probs, label_ids, _ = region_probs(regions.service, project, display, shown)
    with regions.service.sessions.begin() as session:
        for k, region in enumerate(fresh):
            row = None if probs is None else probs[k]
            if row is not None and float(row.max()) < min_confidence:
                summary.weak += 1
                continue
            _store(session, image, region, row, label_ids, segmenter_id=segmenter.model_id,
                   model_id=_clip_id(regions, project) if row is not None else None)
            summary.proposed += 1


def _new_regions(regions: Regions, image: dict[str, Any], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Regions not already known: an instance, or a proposal in any state, with IoU >= DUPLICATE_IOU."""
    from core.segment.masks import mask_iou, rle_decode

    with regions.service.sessions.begin() as session:
        known = [rle_decode(r.rle) for r in store.instances_of_image(session, image_id=image["image_id"])]
        known += [rle_decode(p.rle) for p in store.proposals_of_image(session, image_id=image["image_id"])]
    fresh: list[dict[str, Any]] = []
    for region in found:
        mask = region["segmentation"]
        if not mask.any():
            continue
        others = known + [f["segmentation"] for f in fresh]
        if all(mask_iou(mask, other) < DUPLICATE_IOU for other in others):
            fresh.append(region)
    return fresh


def _store(session: Any, image: dict[str, Any], region: dict[str, Any], probs: np.ndarray | None,
           label_ids: list[int], *, segmenter_id: str, model_id: str | None) -> None:
    from core.segment.masks import mask_bbox, rle_encode

    mask = region["segmentation"]
    best = None if probs is None else int(np.argmax(probs))
    store.add_proposal(
        session, project_id=image["project_id"], image_id=image["image_id"], segmenter_id=segmenter_id,
        model_id=model_id, rle=rle_encode(mask), bbox=mask_bbox(mask), area=int(mask.sum()),
        predicted_iou=float(region["predicted_iou"]), stability=float(region["stability_score"]),
        label_ids=label_ids if probs is not None else None, probs=probs,
        label_id=None if best is None else label_ids[best],
        confidence=None if best is None else float(probs[best]),  # type: ignore[index]
        uncertainty=uncertainty(probs, predicted_iou=float(region["predicted_iou"])), status="open")


def uncertainty(probs: np.ndarray | None, *, predicted_iou: float) -> float:
    """1 - margin between the two best classes (the queue's order); without CLIP, SAM's doubt."""
    if probs is None:
        return 1.0 - min(max(predicted_iou, 0.0), 1.0)
    if probs.size < 2:
        return 0.0
    top = np.sort(probs)[-2:]
    return float(1.0 - (top[1] - top[0]))


def _clip_id(regions: Regions, project: str) -> str | None:
    return regions.service.state(project).model_id


# -- the proposal queue ------------------------------------------------------------------------


def next_proposals(regions: Regions, project: str, *, image_id: int | None = None, limit: int = 1,
                   exclude: Sequence[int] = (), k: int = 3) -> list[dict[str, Any]]:
    """Open proposals, the least certain first, with their top-k classes."""
    with regions.service.sessions.begin() as session:
        project_id = regions.service.project(session, project).id
        rows = store.open_proposals(session, project_id=project_id, limit=limit, image_id=image_id, exclude=exclude)
        names = _names(session, project_id)
        return [proposal_dict(row, names, k=k) for row in rows]


def proposal_dict(row: RegionProposal, names: dict[int, str], *, k: int = 3) -> dict[str, Any]:
    top: list[dict[str, Any]] = []
    if row.probs is not None and row.label_ids:
        probs = np.frombuffer(row.probs, dtype=np.float32)
        order = np.argsort(-probs, kind="stable")[:k]
        top = [{"label": names.get(row.label_ids[j]), "confidence": float(probs[j])} for j in order]
    return {"id": row.id, "image_id": row.image_id, "rle": row.rle, "bbox": [round(v, 1) for v in row.bbox],
            "area": row.area, "predicted_iou": row.predicted_iou, "uncertainty": row.uncertainty,
            "status": row.status, "top": top}


def decide(regions: Regions, project: str, proposal_id: int, *, accept: bool, label: str | None = None,
           annotator: str | None = None) -> dict[str, Any]:
    """Accept (it becomes an instance, with `label` or its best class) or reject an open proposal."""
    with regions.service.sessions.begin() as session:
        project_id = regions.service.project(session, project).id
        user = regions.service.actor(session, annotator, "label")
        row = store.proposal(session, project_id=project_id, proposal_id=int(proposal_id))
        if row is None:
            raise NotFound(f"proposal: no proposal #{proposal_id} in project '{project}'")
        if row.status != "open":
            raise Conflict(f"proposal: #{proposal_id} was already {row.status}")
        event = {"project_id": project_id, "image_id": row.image_id, "proposal_id": row.id, "annotator_id": user.id}
        if accept:
            return _accept(session, row, label, event)
        store.decide_proposal(session, row, status="rejected", user_id=user.id)
        store.add_event(session, action="reject_proposal", label_before_id=row.label_id, **event)
        return {"proposal": row.id, "status": "rejected"}


def _accept(session: Any, row: RegionProposal, label: str | None, event: dict[str, Any]) -> dict[str, Any]:
    from core.regions import _chosen_label, _class_id, instance_dict

    every_class = proposal_dict(row, _names(session, row.project_id), k=len(row.label_ids or []) or 1)["top"]
    label, confidence = _chosen_label(label, every_class)
    label_id = _class_id(session, row.project_id, label)
    instance = store.add_instance(
        session, project_id=row.project_id, image_id=row.image_id, label_id=label_id, rle=row.rle, bbox=row.bbox,
        area=row.area, score=row.predicted_iou, label_confidence=confidence, source="proposal", prompts=None,
        segmenter_id=row.segmenter_id, proposal_id=row.id, annotator_id=event["annotator_id"])
    store.decide_proposal(session, row, status="accepted", user_id=event["annotator_id"])
    store.add_event(session, action="accept_proposal", instance_id=instance.id, label_before_id=row.label_id,
                    label_after_id=label_id, **event)
    return {"proposal": row.id, "status": "accepted", "instance": instance_dict(instance, label)}


def _names(session: Any, project_id: int) -> dict[int, str]:
    from core.regions import _class_names

    return _class_names(session, project_id)
