"""What the audit estimate and "accept the rest" answer (the web app imports these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """An estimated accuracy: `value` None before any audit is answered; 95% interval low..high."""

    value: float | None
    low: float
    high: float
    answered: int      # audits with a human label
    correct: int       # of those, how many the pseudo-label got right
    skipped: int       # audits skipped (unanswered): they widen the interval


@dataclass(frozen=True)
class ClassAccuracy:
    label: str
    accuracy: Interval


@dataclass(frozen=True)
class EstimatePoint:
    """The estimate as it stood after `audits` answered audits (pseudo-labels as shown at each draw)."""

    audits: int
    labels: int
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class SavedPoint:
    """After `labels` queue labels: errors they fixed, and those random order would have fixed."""

    labels: int
    fixed: int
    random: float
    random_low: float
    random_high: float


@dataclass(frozen=True)
class AccuracyEstimate:
    """The honest estimate of the pseudo-labels' accuracy on the remaining unlabeled pool."""

    pool: int                       # unlabeled embedded images the estimate is about
    audit_share: float
    audits_served: int
    accuracy: Interval
    per_class: tuple[ClassAccuracy, ...]
    history: tuple[EstimatePoint, ...]
    saved: tuple[SavedPoint, ...]
    labels_saved: float | None      # random-order labels needed to fix as many errors, minus those used
    model_version: str | None
    definition: str


@dataclass(frozen=True)
class AcceptPreview:
    """What "accept the rest" would do: how many pseudo-labels, and their estimated accuracy."""

    images: int
    min_confidence: float
    target_accuracy: float | None
    accuracy: Interval
    model_version: str | None


@dataclass(frozen=True)
class Accepted:
    batch_id: int
    images: int
    min_confidence: float
    accuracy: Interval
