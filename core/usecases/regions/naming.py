"""CLIP names regions: each mask's crop (outside the mask filled with CLIP's mean colour, as
RegionCLIP-style zero-shot region classification does) is embedded with the project's CLIP model
and scored against the project's zero-shot text head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import ModelLoadError

if TYPE_CHECKING:
    from core.service import Service

CROP_BATCH = 32


def region_probs(service: Service, project: str, pixels: np.ndarray, masks: Sequence[np.ndarray]
                 ) -> tuple[np.ndarray | None, list[int], list[str]]:
    """(probabilities (M, K) over the project's classes, their label ids, their names); probs None
    when the project has no CLIP embeddings/text head or the model cannot be loaded."""
    state = service.state(project)
    with state.lock:
        head, scale, label_ids, model_id = state.head, state.logit_scale, list(state.label_ids), state.model_id
    names = _names(service, project, label_ids)
    if head is None or model_id is None or not masks:
        return None, label_ids, names
    try:
        model = _clip_model(service, project, model_id)
    except ModelLoadError:
        return None, label_ids, names
    features = np.concatenate([_embed_crops(model, pixels, masks[start:start + CROP_BATCH])
                               for start in range(0, len(masks), CROP_BATCH)])
    logits = scale * features @ head.T
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True), label_ids, names


def name_regions(service: Service, project: str, pixels: np.ndarray, masks: Sequence[np.ndarray], *,
                 k: int | None = 3) -> list[list[dict[str, Any]]]:
    """The top-k classes (None: all) of each mask, [{label, confidence}], best first; [] per mask without CLIP."""
    probs, _, names = region_probs(service, project, pixels, masks)
    if probs is None:
        return [[] for _ in masks]
    return [top_k(row, names, k) for row in probs]


def top_k(probs: np.ndarray, names: list[str], k: int | None) -> list[dict[str, Any]]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": names[j], "confidence": float(probs[j])} for j in order]


def _names(service: Service, project: str, label_ids: list[int]) -> list[str]:
    from core.store import repo

    with service.sessions.begin() as session:
        project_id = service.project(session, project).id
        by_id = {c.id: c.name for c in repo.classes_of(session, project_id=project_id, include_archived=True)}
    return [by_id.get(i, str(i)) for i in label_ids]


def _clip_model(service: Service, project: str, model_id: str) -> Any:
    with service.sessions.begin() as session:
        spec = service.model_spec(service.project(session, project))
    return service._model_for(spec, model_id)


def _embed_crops(model: Any, pixels: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
    from PIL import Image

    from core.segment.masks import masked_crop

    return model.encode_pictures([Image.fromarray(masked_crop(pixels, mask)) for mask in masks])
