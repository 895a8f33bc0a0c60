"""The region endpoints of the documented API (docs/regions.md): what the region mode of the Label
view does, callable with gradio_client. Prompts are JSON: {"points": [[x, y, 1|0], ...], "box":
[x0, y0, x1, y1]} in image pixels. Masks come back as COCO RLE, never as full-size images; every
answer is the regions use case's result as JSON (`as_json`)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.service import Service
from core.usecases.regions.results import as_json
from webapp.handlers import json_object, user_of


def _prompts(text: str) -> dict[str, Any]:
    return json_object(text, field="prompts", example='{"points": [[x, y, 1]], "box": null}')


def segment(service: Service, project: str, image_id: int, prompts: str,
            request: gr.Request | None = None) -> dict[str, Any]:
    """SAM's candidate masks for these prompts (score, area, COCO RLE) and the best one."""
    result = service.regions.segment_rle(project, image_id, _prompts(prompts),
                                         annotator=user_of(service, request))
    return as_json(result)


def add_instance(service: Service, project: str, image_id: int, prompts: str, choice: int | None = None,
                 label: str = "", request: gr.Request | None = None) -> dict[str, Any]:
    """Save SAM's mask (`choice`, default its best) as an instance of `label` (default: CLIP's proposal)."""
    return as_json(service.regions.add_instance(project, image_id, _prompts(prompts), choice=choice,
                                                label=label or None, annotator=user_of(service, request)))


def instances(service: Service, project: str, image_id: int, request: gr.Request | None = None
              ) -> list[dict[str, Any]]:
    """The instances of an image."""
    return as_json(service.regions.instances(project, image_id, annotator=user_of(service, request)))


def delete_instance(service: Service, project: str, instance_id: int, reason: str = "",
                    request: gr.Request | None = None) -> dict[str, Any]:
    """Delete an instance; `reason` (at most 500 characters) is kept in the history."""
    return as_json(service.regions.delete_instance(project, instance_id, reason=reason or None,
                                                   annotator=user_of(service, request)))


def relabel_instance(service: Service, project: str, instance_id: int, label: str, reason: str = "",
                     request: gr.Request | None = None) -> dict[str, Any]:
    """Give an instance another class; `reason` (at most 500 characters) is kept in the history."""
    return as_json(service.regions.relabel_instance(project, instance_id, label, reason=reason or None,
                                                    annotator=user_of(service, request)))


def undo_region(service: Service, project: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Undo your latest region action (add, delete, relabel, accept or reject a proposal)."""
    return as_json(service.regions.undo(project, annotator=user_of(service, request)))


def propose_regions(service: Service, project: str, image_id: int, min_confidence: float = 0.3,
                    pred_iou_thresh: float = 0.8, stability_score_thresh: float = 0.85,
                    request: gr.Request | None = None) -> dict[str, Any]:
    """Run the automatic mask generator on one image (with its two filters) and name the regions
    with CLIP; regions whose best class is below `min_confidence` are dropped."""
    return as_json(service.regions.propose(
        project, image_ids=[image_id], min_confidence=float(min_confidence),
        pred_iou_thresh=float(pred_iou_thresh), stability_score_thresh=float(stability_score_thresh),
        annotator=user_of(service, request)))


def proposals(service: Service, project: str, image_id: int | None = None, limit: int = 20,
              request: gr.Request | None = None) -> list[dict[str, Any]]:
    """Open region proposals, the least certain first."""
    return as_json(service.regions.next_proposals(project, image_id=image_id, limit=limit,
                                                  annotator=user_of(service, request)))


def decide_proposal(service: Service, project: str, proposal_id: int, accept: bool, label: str = "",
                    request: gr.Request | None = None) -> dict[str, Any]:
    """Accept (it becomes an instance) or reject a region proposal."""
    return as_json(service.regions.decide_proposal(project, proposal_id, accept=bool(accept),
                                                   label=label or None, annotator=user_of(service, request)))


ENDPOINTS = (segment, add_instance, instances, delete_instance, relabel_instance, undo_region, propose_regions,
             proposals, decide_proposal)
