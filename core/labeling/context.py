"""What a strategy may know about the labeled set: `LabeledContext`, frozen, built by the caller."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core.labeling.classmeans import ClassMeans, estimate

VIEW_SCALE = 20.0
VIEW_SAMPLE = 4000


@dataclass(frozen=True)
class LabeledContext:
    """The human labels so far, for strategies that look where the errors are or what is covered.

    `predicted` / `confidence`: the model's class and top probability for each labeled image before
    its label counted (the zero-shot head's, where there is one: derivable from the store after a
    restart); `predicted != labels` marks the corrections."""

    embeddings: np.ndarray   # m x D, L2-normalised
    labels: np.ndarray       # m class indices
    predicted: np.ndarray    # m class indices
    confidence: np.ndarray   # m top probabilities of `predicted`
    num_classes: int
    has_text_head: bool
    view: ClassMeans | None = None  # a second, image-space model of the classes (disagreement = likely error)

    @property
    def corrected(self) -> np.ndarray:
        return self.predicted != self.labels

    def label_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)


def labeled_context(embeddings: np.ndarray, labels: np.ndarray, probs: np.ndarray, *, head: np.ndarray | None,
                    logit_scale: float, center: np.ndarray, rng: np.random.Generator) -> LabeledContext:
    """The context of a collection: `labels` -1 where unlabeled, `probs` the current model's (N x K).

    Its `view` is the collection's class means in image space (core/labeling/classmeans.py) from the
    human labels and the current model's posteriors on a sample of the unlabeled pool."""
    y = np.asarray(labels)
    labeled, pool = np.flatnonzero(y >= 0), np.flatnonzero(y < 0)
    k = probs.shape[1]
    context = zero_shot_context(embeddings[labeled], y[labeled], head=head, logit_scale=logit_scale, num_classes=k)
    if pool.size > VIEW_SAMPLE:
        pool = np.sort(rng.choice(pool, VIEW_SAMPLE, replace=False))
    if not pool.size or (head is None and not labeled.size):
        return context
    seen = None if head is not None else np.bincount(y[labeled], minlength=k) > 0
    view = estimate(embeddings[labeled], y[labeled], embeddings[pool], probs[pool], num_classes=k, center=center,
                    scale=VIEW_SCALE, pool_weight=1.0, classes=seen)
    return replace(context, view=view)


def empty_context(*, dim: int, num_classes: int, has_text_head: bool) -> LabeledContext:
    none = np.zeros(0, dtype=np.int64)
    return LabeledContext(embeddings=np.zeros((0, dim), dtype=np.float32), labels=none, predicted=none,
                          confidence=np.zeros(0), num_classes=num_classes, has_text_head=has_text_head)


def zero_shot_context(embeddings: np.ndarray, labels: np.ndarray, *, head: np.ndarray | None, logit_scale: float,
                      num_classes: int) -> LabeledContext:
    """The context of labeled images whose 'before' prediction is the zero-shot head's (uniform, and
    so never a correction, in a cold start)."""
    emb = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(labels).astype(np.int64)
    if head is None:
        return LabeledContext(embeddings=emb, labels=y, predicted=y.copy(),
                              confidence=np.full(y.size, 1.0 / num_classes), num_classes=num_classes,
                              has_text_head=False)
    z = logit_scale * (emb @ np.asarray(head, dtype=np.float32).T)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return LabeledContext(embeddings=emb, labels=y, predicted=np.argmax(p, axis=1), confidence=p.max(axis=1),
                          num_classes=num_classes, has_text_head=True)
