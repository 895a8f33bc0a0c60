"""The honest estimate from the answered audits, against the live classifier (docs/estimate.md).

Audits are held out of training (ProjectState.training_labels), so the live classifier's prediction
for each answered audit is an honest test of the very pseudo-labels the pool has now: no refit is
needed. The history and the labels-saved curve use what was shown when each item was served."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.labeling import estimate as est
from core.usecases.labeling.audits import ServedRows
from core.usecases.labeling.queue import ProjectState
from core.usecases.labeling.results import (
    AccuracyEstimate,
    ClassAccuracy,
    EstimatePoint,
    Interval,
    SavedPoint,
)

MAX_POINTS = 200
DEFINITION = ("share of the unlabeled pool whose current pseudo-label is right, from blind uniform audits "
              "held out of training and scored by the live classifier; 95% Wilson interval, skipped audits "
              "counted wrong for its low end and right for its high end, its high end raised by the "
              "share of the pool labeled since the audits were drawn")


@dataclass(frozen=True)
class Scored:
    """The answered audits scored against the live classifier, and the skipped ones."""

    confidence: np.ndarray          # live confidence of each answered audit (never trained on it)
    predicted: np.ndarray           # live class index
    correct: np.ndarray             # bool
    skipped_confidence: np.ndarray  # live confidence of each skipped (unanswered) audit
    pool_confidence: np.ndarray     # live confidence of every pool image
    model_version: str | None
    shrink: float = 0.0             # share of the pool gone since the audits were drawn (mean)


def score(state: ProjectState, served: ServedRows) -> Scored:
    """The answered audits against the live classifier's predictions (it never learned their labels)."""
    # audits a standing accept-the-rest batch covered stand for the images it took, not the pool left
    counted = served.audit & ~served.covered
    with state.lock:
        probs = state.probs
        rows = [(state.position[int(i)], state.label_ids.index(int(h)), int(size)) for i, h, a, size in
                zip(served.image_ids, served.human, counted, served.pool_size, strict=True)
                if a and h in state.label_ids and int(i) in state.position]
        skipped = [state.position[int(i)] for i, h, a in zip(served.image_ids, served.human, counted, strict=True)
                   if a and h < 0 and int(i) in state.skipped and int(i) in state.position]
        pool = state.pool_rows()
        version = state.classifier.version if state.classifier else None
    if probs is None:
        empty = np.zeros(0)
        return Scored(empty, empty.astype(np.int64), empty.astype(bool), empty, empty, version)
    audits = np.array([r for r, _, _ in rows], dtype=np.int64)
    truth = np.array([y for _, y, _ in rows], dtype=np.int64)
    shrink = est.shrink_since(int(pool.size), np.array([size for _, _, size in rows]))
    held = probs[audits]
    predicted = held.argmax(axis=1)
    return Scored(confidence=held.max(axis=1), predicted=predicted,
                  correct=predicted == truth, skipped_confidence=probs[skipped].max(axis=1) if skipped else np.zeros(0),
                  pool_confidence=probs[pool].max(axis=1), model_version=version, shrink=shrink)


def interval(found: est.Estimate) -> Interval:
    return Interval(value=found.value, low=found.low, high=found.high, answered=found.answered,
                    correct=found.correct, skipped=found.skipped)


def summary(state: ProjectState, served: ServedRows, scored: Scored) -> AccuracyEstimate:
    with state.lock:
        names = [state.class_names.get(i, str(i)) for i in state.label_ids]
        share = state.audit_share
    overall = est.estimate(scored.correct, skipped=scored.skipped_confidence.size, shrink=scored.shrink)
    classes = est.per_class(scored.predicted, scored.correct, num_classes=len(names))
    saved = est.labels_saved(*_fixed_and_wrong(served))
    return AccuracyEstimate(
        pool=int(scored.pool_confidence.size), audit_share=share, audits_served=int(served.audit.sum()),
        accuracy=interval(overall),
        per_class=tuple(ClassAccuracy(names[j], interval(found)) for j, found in classes.items()),
        history=_history(served), saved=_saved_points(saved), labels_saved=saved.labels_saved,
        model_version=scored.model_version, definition=DEFINITION)


def _fixed_and_wrong(served: ServedRows) -> tuple[np.ndarray, np.ndarray]:
    shown = (served.human >= 0) & (served.shown >= 0)
    differs = served.shown != served.human
    return differs[shown & ~served.audit], differs[shown & served.audit]


def _history(served: ServedRows) -> tuple[EstimatePoint, ...]:
    """After each answered audit: the running estimate with the pseudo-labels shown at the draws."""
    done = (served.human >= 0) & (served.shown >= 0) & served.audit
    right, labels = served.shown[done] == served.human[done], served.labels_then[done]
    points = []
    for k in _thin(right.size):
        found = est.estimate(right[:k])
        points.append(EstimatePoint(audits=k, labels=int(labels[k - 1]), value=float(found.value or 0.0),
                                    low=found.low, high=found.high))
    return tuple(points)


def _saved_points(saved: est.Saved) -> tuple[SavedPoint, ...]:
    if not np.isfinite(saved.random).all():
        return ()
    return tuple(SavedPoint(labels=int(saved.labels[k - 1]), fixed=int(saved.fixed[k - 1]),
                            random=float(saved.random[k - 1]), random_low=float(saved.random_low[k - 1]),
                            random_high=float(saved.random_high[k - 1])) for k in _thin(saved.labels.size))


def _thin(n: int) -> list[int]:
    """1..n, at most MAX_POINTS of them, always with n."""
    if n <= MAX_POINTS:
        return list(range(1, n + 1))
    return sorted({*np.linspace(1, n, MAX_POINTS).astype(int).tolist(), n})
