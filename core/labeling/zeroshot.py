"""Zero-shot heads from prompts, and class probabilities from embeddings (numpy only).

The text encoder is passed in as a callable (e.g. `ImageTextModel.encode_texts`), so this module
never imports torch.

Prompt rules (`class_prompts`):
- `prompts` given: they replace the templates for that class, used as written ("{label}" in
  them, if any, is replaced by the label);
- else `description` given: every template is filled with "<label>, <description>", e.g.
  "a photo of a tabby, a cat with a striped coat." (the CLIP paper's "a photo of {}, a type of
  pet." pattern);
- else: every template is filled with the label.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import numpy as np

from core.errors import InvalidInput

PLACEHOLDER = "{label}"

# The 18-template ensemble of the CLIP repository (openai/CLIP, data/prompts.md, CIFAR-10 entry):
# photo templates that suit a generic image dataset.
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {label}.",
    "a blurry photo of a {label}.",
    "a black and white photo of a {label}.",
    "a low contrast photo of a {label}.",
    "a high contrast photo of a {label}.",
    "a bad photo of a {label}.",
    "a good photo of a {label}.",
    "a photo of a small {label}.",
    "a photo of a big {label}.",
    "a photo of the {label}.",
    "a blurry photo of the {label}.",
    "a black and white photo of the {label}.",
    "a low contrast photo of the {label}.",
    "a high contrast photo of the {label}.",
    "a bad photo of the {label}.",
    "a good photo of the {label}.",
    "a photo of the small {label}.",
    "a photo of the big {label}.",
)

# The 7 templates chosen for ImageNet by forward selection in the CLIP repository's
# notebooks/Prompt_Engineering_for_ImageNet.ipynb.
IMAGENET_SELECTED_TEMPLATES: tuple[str, ...] = (
    "itap of a {label}.",
    "a bad photo of the {label}.",
    "a origami {label}.",
    "a photo of the large {label}.",
    "a {label} in a video game.",
    "art of the {label}.",
    "a photo of the small {label}.",
)


def class_prompts(
    label: str,
    *,
    description: str | None = None,
    prompts: Sequence[str] | None = None,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
) -> list[str]:
    """The prompts of one class: custom `prompts`, else templates x (label[, description])."""
    _check_text(label, field="label")
    if prompts is not None:
        if isinstance(prompts, str) or len(prompts) == 0:
            raise InvalidInput(f"prompts of {label!r}: give a non-empty list of prompt strings")
        for prompt in prompts:
            _check_text(prompt, field=f"prompts of {label!r}")
        return [prompt.replace(PLACEHOLDER, label) for prompt in prompts]
    _check_templates(templates)
    subject = label
    if description is not None:
        _check_text(description, field=f"description of {label!r}")
        subject = f"{label}, {description.strip().rstrip('.')}"
    return [template.replace(PLACEHOLDER, subject) for template in templates]


def text_head(
    encode_texts: Callable[[Sequence[str]], np.ndarray],
    prompts_per_class: Sequence[Sequence[str]],
) -> np.ndarray:
    """K x D float32: per class, the mean of its L2-normalised prompt embeddings, re-normalised."""
    counts = _check_prompts_per_class(prompts_per_class)
    flat = [prompt for prompts in prompts_per_class for prompt in prompts]
    encoded = np.asarray(encode_texts(flat), dtype=np.float32)
    if encoded.ndim != 2 or encoded.shape[0] != len(flat):
        raise InvalidInput(
            f"encode_texts returned shape {encoded.shape} for {len(flat)} prompts; expected (number of prompts, D)"
        )
    encoded = _l2_normalise(encoded)
    bounds = np.cumsum([0, *counts])
    means = np.stack([encoded[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    return _l2_normalise(means)


def prompts_hash(prompts_per_class: Sequence[Sequence[str]]) -> str:
    """First 16 hex of the sha256 of the prompts, class order included."""
    _check_prompts_per_class(prompts_per_class)
    canonical = json.dumps([list(prompts) for prompts in prompts_per_class], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def zero_shot_probs(embeddings: np.ndarray, head: np.ndarray, *, logit_scale: float) -> np.ndarray:
    """N x K float32: softmax(logit_scale * embeddings @ head.T), rows summing to 1."""
    images = np.asarray(embeddings, dtype=np.float32)
    classes = np.asarray(head, dtype=np.float32)
    if images.ndim != 2 or classes.ndim != 2 or images.shape[1] != classes.shape[1]:
        raise InvalidInput(f"embeddings {images.shape} and head {classes.shape} must be N x D and K x D")
    if classes.shape[0] == 0:
        raise InvalidInput("head: needs at least one class")
    if not np.isfinite(logit_scale) or logit_scale <= 0:
        raise InvalidInput(f"logit_scale: must be a positive finite number, got {logit_scale!r}")
    logits = np.float32(logit_scale) * (images @ classes.T)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32, copy=False)


def _l2_normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


def _check_text(value: object, *, field: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field}: must be a non-empty string, got {value!r}")


def _check_templates(templates: Sequence[str]) -> None:
    if isinstance(templates, str) or len(templates) == 0:
        raise InvalidInput("templates: give a non-empty list of templates")
    for template in templates:
        _check_text(template, field="templates")
        if PLACEHOLDER not in template:
            raise InvalidInput(f"templates: {template!r} lacks the placeholder {PLACEHOLDER}")


def _check_prompts_per_class(prompts_per_class: Sequence[Sequence[str]]) -> list[int]:
    if isinstance(prompts_per_class, str) or len(prompts_per_class) == 0:
        raise InvalidInput("prompts_per_class: give at least one class")
    counts = []
    for index, prompts in enumerate(prompts_per_class):
        if isinstance(prompts, str) or len(prompts) == 0:
            raise InvalidInput(f"prompts_per_class[{index}]: give a non-empty list of prompts")
        for prompt in prompts:
            _check_text(prompt, field=f"prompts_per_class[{index}]")
        counts.append(len(prompts))
    return counts
