"""CLIP names regions: each mask's crop (outside the mask filled with CLIP's mean colour, as
RegionCLIP-style zero-shot region classification does) is scored by the injected CropClassifier
against the project's zero-shot text head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image as Picture

from core.errors import InvalidInput, ModelLoadError
from core.segment.masks import masked_crop
from core.usecases.regions.ports import CropClassifier
from core.usecases.regions.results import LabelScore

CROP_BATCH = 32


def region_probs(classifier: CropClassifier, project_id: int, pixels: np.ndarray, masks: Sequence[np.ndarray]
                 ) -> tuple[np.ndarray | None, list[int]]:
    """(probabilities (M, K), the class ids of the columns); probs None when the project has no
    CLIP model or text head (or it cannot be loaded), or there is no mask."""
    if not masks:
        return None, []
    found: list[np.ndarray] = []
    label_ids: list[int] = []
    try:
        for start in range(0, len(masks), CROP_BATCH):
            crops = [Picture.fromarray(masked_crop(pixels, m)) for m in masks[start:start + CROP_BATCH]]
            probs, label_ids = classifier.probs(project_id, crops)
            found.append(probs)
    except ModelLoadError:
        return None, []
    return np.concatenate(found), label_ids


def top_k(probs: np.ndarray, label_ids: Sequence[int], names: Mapping[int, str], k: int | None
          ) -> tuple[LabelScore, ...]:
    """The k most probable classes (None: all), best first."""
    order = np.argsort(-probs, kind="stable")[:k]
    return tuple(LabelScore(label=names.get(label_ids[j], str(label_ids[j])), confidence=float(probs[j]))
                 for j in order)


def chosen_label(label: str | None, top: Sequence[LabelScore]) -> tuple[str, float | None]:
    """The class to save (`label`, else CLIP's best) and CLIP's confidence in it (None: not scored)."""
    if label:
        match = next((t for t in top if t.label == label), None)
        return label, None if match is None else match.confidence
    best = top[0].label if top else None
    if best is None:
        raise InvalidInput("label: CLIP has no proposal for this project (no model or text head yet); pick a class")
    return best, top[0].confidence


def class_id(live: Mapping[str, int], label: str) -> int:
    """The id of the class named `label` among the project's live classes (InvalidInput listing them)."""
    if label not in live:
        raise InvalidInput(f"label: unknown class '{label}' (classes: {', '.join(live)})")
    return live[label]
