"""Active-learning strategies: pure functions over the candidates' `probs` and `embeddings`.

Every strategy has the signature `f(probs, embeddings, *, n, rng, context=None) -> Selection` and
returns indices into the N candidates in priority order; `context` (core/labeling/context.py) is
what the labeled set tells (its embeddings, labels, the corrections), used by `typical_first`,
`error_seeking` and `auto`, ignored by the rest. `select` validates once and dispatches through the
`STRATEGIES` registry; the private functions assume valid input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.errors import InvalidInput
from core.labeling.context import LabeledContext
from core.labeling.seeking import error_weights
from core.labeling.typical import typical_first

DIVERSE_POOL_FACTOR = 5
SEEKING_POOL_FACTOR = 2  # error_seeking with a head: its scores are calibrated P(wrong), see _error_seeking
DIVERSE_POOL_MIN = 50
COLD_START_SAMPLE = 20_000
COLD_START_ITERATIONS = 5
TYPICAL_PER_CLASS = 1
DEFAULT_STRATEGY = "auto"  # what the web app, the CLI and `clipmark simulate` use unless told otherwise


@dataclass(frozen=True)
class Selection:
    """Chosen candidates in priority order and their urgency scores (higher = more urgent)."""

    indices: np.ndarray
    scores: np.ndarray


class Strategy(Protocol):
    def __call__(self, probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
                 context: LabeledContext | None = None) -> Selection: ...


def least_confidence_scores(probs: np.ndarray) -> np.ndarray:
    """1 - max probability: high when the top class is weak."""
    return (1.0 - probs.max(axis=1)).astype(np.float64)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """1 - (top1 - top2): high when the two best classes are close."""
    if probs.shape[1] < 2:
        return np.zeros(probs.shape[0])
    top2 = -np.partition(-probs, 1, axis=1)[:, :2]
    return (1.0 - (top2[:, 0] - top2[:, 1])).astype(np.float64)


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row."""
    p = probs.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=1)


def _top(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the k highest scores, highest first; ties broken at random (never by position,
    which often follows the class order of an import)."""
    k = min(k, scores.shape[0])
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    threshold = np.partition(scores, scores.shape[0] - k)[scores.shape[0] - k]
    candidates = np.flatnonzero(scores >= threshold)
    order = np.lexsort((rng.random(candidates.size), -scores[candidates]))
    return candidates[order[:k]].astype(np.int64)


def _ranked(scores: np.ndarray, n: int, rng: np.random.Generator) -> Selection:
    idx = _top(scores, n, rng)
    return Selection(indices=idx, scores=scores[idx])


def _random(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
               context: LabeledContext | None = None) -> Selection:
    """A uniform random order; scores are the least-confidence ones, for display only."""
    idx = rng.permutation(probs.shape[0])[: min(n, probs.shape[0])].astype(np.int64)
    return Selection(indices=idx, scores=least_confidence_scores(probs)[idx])


def _least_confidence(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
               context: LabeledContext | None = None) -> Selection:
    return _ranked(least_confidence_scores(probs), n, rng)


def _margin(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
               context: LabeledContext | None = None) -> Selection:
    return _ranked(margin_scores(probs), n, rng)


def _entropy(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
               context: LabeledContext | None = None) -> Selection:
    return _ranked(entropy_scores(probs), n, rng)


def _diverse(scores: np.ndarray, embeddings: np.ndarray, n: int, rng: np.random.Generator, *,
            pool_factor: int = DIVERSE_POOL_FACTOR) -> Selection:
    """Uncertainty-weighted k-center greedy on a pool of the most uncertain candidates.

    The first pick is the most uncertain item; each next pick maximises
    `urgency * distance to the nearest item already picked` (cosine distance), so a near-duplicate of
    a picked item scores ~0 while a distinct uncertain item exists.
    """
    n = min(n, scores.shape[0])
    pool = _top(scores, max(pool_factor * n, n + DIVERSE_POOL_MIN), rng)
    if n == 0:
        return Selection(indices=pool[:0], scores=scores[pool[:0]])
    emb = np.ascontiguousarray(embeddings[pool], dtype=np.float32)
    pool_scores = scores[pool]
    urgency = (pool_scores - pool_scores.min()) + 1e-6 * (1.0 + np.abs(pool_scores).max())
    distance = np.full(pool.shape[0], np.inf)
    chosen = np.zeros(n, dtype=np.int64)
    picked = np.zeros(pool.shape[0], dtype=bool)
    for step in range(n):
        value = urgency if step == 0 else urgency * distance
        value = np.where(picked, -np.inf, value)
        best = int(np.argmax(value))
        chosen[step] = best
        picked[best] = True
        distance = np.minimum(distance, np.maximum(1.0 - emb @ emb[best], 0.0))
    return Selection(indices=pool[chosen], scores=pool_scores[chosen])


def _margin_diverse(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
               context: LabeledContext | None = None) -> Selection:
    return _diverse(margin_scores(probs), embeddings, n, rng)


def _entropy_diverse(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
               context: LabeledContext | None = None) -> Selection:
    return _diverse(entropy_scores(probs), embeddings, n, rng)


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """scikit-learn's k-means on the unit vectors: plain k-means++ seeding (one trial per centre), then
    COLD_START_ITERATIONS Lloyd steps; returns assignments.

    Float64 and one seeding trial: as fast as the numpy k-means it replaced (bench/strategies_speed.py
    --n 32, cold_start: 141 vs 248 ms at N = 10k, 266 vs 349 ms at 100k; on a 20k x 512 sample with
    k = 100: 432 vs 379 ms), where `KMeans`' default greedy seeding (2 + log k trials) took 930 ms, and
    1161 ms on float32 input, whose distances sklearn upcasts in chunks.
    """
    from sklearn.cluster import KMeans, kmeans_plusplus  # sklearn's import costs ~0.5 s: only when clustering

    data = points.astype(np.float64)
    seed = int(rng.integers(2**31 - 1))
    centres, _ = kmeans_plusplus(data, k, random_state=seed, n_local_trials=1)
    model = KMeans(k, init=centres, n_init=1, max_iter=COLD_START_ITERATIONS, random_state=seed)
    return model.fit(data).labels_.astype(np.int64)


def _cold_start(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
               context: LabeledContext | None = None) -> Selection:
    """Representative items: one per k-means cluster (the member nearest its centroid), biggest first.

    Clustering runs on a random sample of at most COLD_START_SAMPLE items; score = cluster share.
    """
    total = embeddings.shape[0]
    n = min(n, total)
    if n == 0:
        return Selection(indices=np.zeros(0, dtype=np.int64), scores=np.zeros(0))
    sample = np.sort(rng.permutation(total)[:COLD_START_SAMPLE]) if total > COLD_START_SAMPLE else np.arange(total)
    points = np.ascontiguousarray(embeddings[sample], dtype=np.float32)
    assign = _kmeans(points, n, rng)
    sizes = np.bincount(assign, minlength=n)
    picks: list[int] = []
    shares: list[float] = []
    for cluster in np.argsort(-sizes, kind="stable"):
        members = np.flatnonzero(assign == cluster)
        if members.size == 0:
            continue
        centroid = points[members].mean(axis=0)
        picks.append(int(sample[members[np.argmax(points[members] @ centroid)]]))
        shares.append(members.size / points.shape[0])
    rest = np.setdiff1d(np.arange(total), np.asarray(picks, dtype=np.int64))
    fill = rng.permutation(rest)[: n - len(picks)]
    indices = np.concatenate([np.asarray(picks, dtype=np.int64), fill.astype(np.int64)])
    scores = np.concatenate([np.asarray(shares), np.zeros(fill.shape[0])])
    return Selection(indices=indices, scores=scores)


def _typical_first(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
                   context: LabeledContext | None = None) -> Selection:
    """Typical-first (core/labeling/typical.py) over at most COLD_START_SAMPLE candidates, clustered
    with the labeled images (at most as many again), so covered regions are not picked again."""
    total = embeddings.shape[0]
    n = min(n, total)
    if n == 0:
        return Selection(indices=np.zeros(0, dtype=np.int64), scores=np.zeros(0))
    sample = np.sort(rng.permutation(total)[:COLD_START_SAMPLE]) if total > COLD_START_SAMPLE else np.arange(total)
    labeled = np.zeros((0, embeddings.shape[1]), dtype=np.float32) if context is None else context.embeddings
    labels = None if context is None else context.labels
    if labeled.shape[0] > COLD_START_SAMPLE:
        keep = np.sort(rng.permutation(labeled.shape[0])[:COLD_START_SAMPLE])
        labeled, labels = labeled[keep], None if labels is None else labels[keep]
    picks, scores = typical_first(embeddings[sample], labeled, n=n, rng=rng, cluster=_kmeans, labels=labels)
    picks = sample[picks]
    fill = rng.permutation(np.setdiff1d(np.arange(total), picks))[: n - picks.size].astype(np.int64)
    return Selection(indices=np.concatenate([picks, fill]), scores=np.concatenate([scores, np.zeros(fill.size)]))


def _error_seeking(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
                   context: LabeledContext | None = None) -> Selection:
    """The probability that the model's prediction is wrong, weighted by the evidence that it is wrong
    more often than it thinks (core/labeling/seeking.py: disagreement with the image-space view,
    corrections per class), then the diversity step of margin_diverse.

    With a text head the probabilities are the (well calibrated) zero-shot softmax or the probe on
    it, so `1 - max p` estimates P(wrong) itself; in a cold start they are not calibrated and the
    top-2 margin ranks better. With a head the diversity step draws on the 2n likeliest errors, not
    5n: reaching deeper trades likely errors for spread (ImageNet, 3 seeds, acc_all at 1,750 labels:
    pool 10n 82.65%, 5n 82.84%, 3n 82.94%, 2n 83.00%, n + 50 83.00%); in a cold start the margin is
    not calibrated and the 5n pool keeps its lead (Flowers at 200 labels: 92.0% against 91.2%)."""
    has_head = context is not None and context.has_text_head
    base = least_confidence_scores(probs) if has_head else margin_scores(probs)
    factor = SEEKING_POOL_FACTOR if has_head else DIVERSE_POOL_FACTOR
    return _diverse(base * error_weights(probs, embeddings, context), embeddings, n, rng, pool_factor=factor)


def auto_phase(context: LabeledContext | None) -> str:
    """What `auto` runs now: "typical_first" in a cold start (no text head) until every class has a
    label or there are TYPICAL_PER_CLASS labels per class, then (and with a head) "error_seeking"."""
    if context is None or context.has_text_head:
        return "error_seeking"
    uncovered = bool((context.label_counts() == 0).any())
    if uncovered and context.labels.size < TYPICAL_PER_CLASS * context.num_classes:
        return "typical_first"
    return "error_seeking"


def _auto(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
          context: LabeledContext | None = None) -> Selection:
    """The default: typical-first at the start of a cold project, error seeking otherwise."""
    return STRATEGIES[auto_phase(context)](probs, embeddings, n=n, rng=rng, context=context)


STRATEGIES: dict[str, Strategy] = {
    "auto": _auto,
    "error_seeking": _error_seeking,
    "typical_first": _typical_first,
    "random": _random,
    "least_confidence": _least_confidence,
    "margin": _margin,
    "entropy": _entropy,
    "margin_diverse": _margin_diverse,
    "entropy_diverse": _entropy_diverse,
    "cold_start": _cold_start,
}


def _validate_context(context: LabeledContext, probs: np.ndarray, embeddings: np.ndarray) -> None:
    if context.num_classes != probs.shape[1]:
        raise InvalidInput(f"context.num_classes: must match probs' {probs.shape[1]} columns, "
                           f"got {context.num_classes}")
    if context.embeddings.ndim != 2 or context.embeddings.shape[1] != embeddings.shape[1]:
        raise InvalidInput(f"context.embeddings: expected m x {embeddings.shape[1]}, got {context.embeddings.shape}")
    m = context.embeddings.shape[0]
    if context.labels.shape != (m,) or context.predicted.shape != (m,) or context.confidence.shape != (m,):
        raise InvalidInput(f"context: labels, predicted and confidence must each have {m} entries")
    for name in ("labels", "predicted"):
        values = getattr(context, name)
        if values.size and (values.min() < 0 or values.max() >= context.num_classes):
            raise InvalidInput(f"context.{name}: must lie in 0..{context.num_classes - 1}")


def _validate(strategy: str, probs: np.ndarray, embeddings: np.ndarray, n: int) -> None:
    if strategy not in STRATEGIES:
        raise InvalidInput(f"strategy: unknown {strategy!r}; valid: {', '.join(sorted(STRATEGIES))}")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise InvalidInput(f"n: must be an integer >= 0, got {n!r}")
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise InvalidInput(f"probs: expected an N x K array with K >= 1, got shape {probs.shape}")
    if embeddings.ndim != 2 or embeddings.shape[0] != probs.shape[0]:
        raise InvalidInput(f"embeddings: expected {probs.shape[0]} x D rows matching probs, "
                           f"got shape {embeddings.shape}")
    if not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise InvalidInput("probs: must be finite and non-negative")
    if probs.shape[0] and not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise InvalidInput("probs: every row must sum to 1")
    if not np.all(np.isfinite(embeddings)):
        raise InvalidInput("embeddings: must be finite")


def select(strategy: str, probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator,
               context: LabeledContext | None = None) -> Selection:
    """Validate the inputs, then run `STRATEGIES[strategy]`; unknown names raise InvalidInput."""
    probs = np.asarray(probs)
    embeddings = np.asarray(embeddings)
    _validate(strategy, probs, embeddings, n)
    if context is not None:
        _validate_context(context, probs, embeddings)
    return STRATEGIES[strategy](probs, embeddings, n=int(n), rng=rng, context=context)
