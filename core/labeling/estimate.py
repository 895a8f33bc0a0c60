"""An honest accuracy estimate of the pseudo-labels, from blind random audits: numpy in, numpy out.

An audit is an image drawn uniformly at random from the unlabeled pool and served like any other
item. What is estimated (docs/estimate.md): the share of the unlabeled pool whose *current*
pseudo-label (the live classifier's top class) is right. Audits are held out of training, so each
answered audit is scored by the current classifier itself, which has never learned its answer: the
model judged is today's, not the one of the day the audit was drawn.

The interval is Wilson's 95% interval on the answered audits. Skipped audits are not answered and
are likely the hard ones, so dropping them would bias the estimate up: they widen the interval
instead (counted wrong for its low end and right for its high end, Manski's worst-case bounds).

An audit drawn when the pool was larger describes that pool: since then the queue has taken images
out of it, the ones the model was least sure of. With `shrink` s = the share of that pool gone
since (mean over the audits), acc(now) = (acc(then) - s * acc(taken)) / (1 - s); the queue takes
images less often right than the pool's average, so acc(now) >= acc(then) and the low end stands,
while the high end is raised to high / (1 - s) (acc(taken) >= 0). The point estimate stays the
audits' own share: pessimistic by at most that much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959964
DEFAULT_SHARE = 0.05
MIN_PER_CLASS = 20   # answered audits a predicted class needs for its own estimate
THRESHOLD_STEPS = 20     # choose_threshold tests at most this many thresholds, each adding as many audits
THRESHOLD_STEP_MIN = 10  # ... and at least this many


@dataclass(frozen=True)
class Estimate:
    value: float | None   # None before any audit is answered
    low: float
    high: float
    answered: int
    correct: int
    skipped: int


def wilson(correct: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (0..1 with no observation)."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def estimate(correct: np.ndarray, *, skipped: int = 0, shrink: float = 0.0) -> Estimate:
    """The share of right answers among answered audits; skipped audits widen the interval, and so
    does the pool's `shrink` since the audits were drawn (its high end; module docstring)."""
    correct = np.asarray(correct, dtype=bool)
    n, k = int(correct.size), int(correct.sum())
    low = wilson(k, n + skipped)[0]
    high = min(1.0, wilson(k + skipped, n + skipped)[1] / max(1e-9, 1.0 - min(max(shrink, 0.0), 1.0)))
    return Estimate(value=k / n if n else None, low=low, high=high, answered=n, correct=k, skipped=skipped)


def audit_slots(n: int, *, share: float, rng: np.random.Generator) -> np.ndarray:
    """Which of n served positions are audits: each one independently with probability `share`."""
    if share <= 0 or n <= 0:
        return np.zeros(max(n, 0), dtype=bool)
    return rng.random(n) < share


def draw_audits(pool: np.ndarray, k: int, *, rng: np.random.Generator) -> np.ndarray:
    """k distinct items drawn uniformly at random from `pool` (all of it when k >= its size)."""
    k = min(int(k), int(pool.size))
    return pool[rng.choice(pool.size, size=k, replace=False)] if k else pool[:0]


def per_class(predicted: np.ndarray, correct: np.ndarray, *, num_classes: int,
              minimum: int = MIN_PER_CLASS) -> dict[int, Estimate]:
    """Estimates per predicted class (precision of its pseudo-labels), where it has `minimum` audits."""
    out: dict[int, Estimate] = {}
    for j in range(num_classes):
        mine = predicted == j
        if int(mine.sum()) >= minimum:
            out[j] = estimate(correct[mine])
    return out


def shrink_since(pool_now: int, pool_at_draw: np.ndarray) -> float:
    """Mean share of the pool gone since each audit was drawn (0 when none)."""
    sizes = np.asarray(pool_at_draw, dtype=float)
    return float(np.clip(1.0 - pool_now / np.maximum(sizes, 1.0), 0.0, 1.0).mean()) if sizes.size else 0.0


def above(confidence: np.ndarray, correct: np.ndarray, skipped_confidence: np.ndarray, *,
          threshold: float, shrink: float = 0.0) -> Estimate:
    """The estimate for the pool items whose confidence is at least `threshold`: the audits there
    are a uniform sample of exactly those items."""
    return estimate(correct[confidence >= threshold], skipped=int((skipped_confidence >= threshold).sum()),
                    shrink=shrink)


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, skipped_confidence: np.ndarray, *,
                     target: float, shrink: float = 0.0) -> tuple[float, Estimate] | None:
    """The lowest confidence threshold whose estimate's 95% low end reaches `target`, found by
    fixed-sequence testing (Learn then Test, Angelopoulos et al. 2021): the candidate thresholds (every
    `step`-th audit's confidence from the top, so each step down adds `step` audits, and 0) are tested
    from the highest down, and the first that fails ends the search; the answer is the last that
    passed. Testing every threshold and keeping any that passes would test many hypotheses at 2.5%
    each: with the pool exactly at the target everywhere it accepted 7-12% of the time. The sequence
    starts at the highest threshold with enough audits above it that an all-right sample could pass
    at all (a count, not an outcome), so that a few top audits do not end it at once. None when no
    threshold passes."""
    ranked = np.sort(np.asarray(confidence, dtype=float))[::-1]
    step = max(THRESHOLD_STEP_MIN, ranked.size // THRESHOLD_STEPS)
    candidates = sorted({0.0, *ranked[step - 1:: step].tolist()}, reverse=True)
    chosen: tuple[float, Estimate] | None = None
    started = False
    for threshold in candidates:
        found = above(confidence, correct, skipped_confidence, threshold=float(threshold), shrink=shrink)
        if not started:
            best_case = estimate(np.ones(found.answered, dtype=bool), skipped=found.skipped, shrink=shrink)
            if not found.answered or best_case.low < target:
                continue
            started = True
        if not (found.answered and found.low >= target):
            break
        chosen = float(threshold), found
    return chosen


@dataclass(frozen=True)
class Saved:
    """Errors fixed by the queue's labels against those random order would fix with as many."""

    labels: np.ndarray        # queue labels so far (1..n)
    fixed: np.ndarray         # errors the queue's labels fixed, cumulative
    random: np.ndarray        # errors random order is expected to fix with as many labels
    random_low: np.ndarray
    random_high: np.ndarray
    labels_saved: float | None  # random-order labels needed to fix as many errors, minus the labels used


def labels_saved(fixed_each: np.ndarray, audit_wrong: np.ndarray) -> Saved:
    """`fixed_each`: per queue label in order, whether it changed the pseudo-label shown when it was
    served; `audit_wrong`: per answered audit, whether the pseudo-label at its draw was wrong (a
    random label fixes an error with that probability)."""
    n = np.arange(1, fixed_each.size + 1)
    fixed = np.cumsum(np.asarray(fixed_each, dtype=np.int64))
    k, m = int(np.sum(audit_wrong)), int(np.size(audit_wrong))
    rate = k / m if m else float("nan")
    low, high = wilson(k, m)
    saved = float(fixed[-1] / rate - n[-1]) if m and k and fixed.size else None
    return Saved(labels=n, fixed=fixed, random=n * rate, random_low=n * low, random_high=n * high,
                 labels_saved=saved)
