"""Active-learning strategies: pure functions over the candidates' `probs` and `embeddings`.

Every strategy has the signature `f(probs, embeddings, *, n, rng) -> Selection` and returns indices
into the N candidates in priority order. `select` validates once and dispatches through the
`STRATEGIES` registry; the private functions assume valid input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.errors import InvalidInput

DIVERSE_POOL_FACTOR = 5
DIVERSE_POOL_MIN = 50
COLD_START_SAMPLE = 20_000
COLD_START_ITERATIONS = 5


@dataclass(frozen=True)
class Selection:
    """Chosen candidates in priority order and their urgency scores (higher = more urgent)."""

    indices: np.ndarray
    scores: np.ndarray


class Strategy(Protocol):
    def __call__(self, probs: np.ndarray, embeddings: np.ndarray, *, n: int,
                 rng: np.random.Generator) -> Selection: ...


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


def _random(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator) -> Selection:
    """A uniform random order; scores are the least-confidence ones, for display only."""
    idx = rng.permutation(probs.shape[0])[: min(n, probs.shape[0])].astype(np.int64)
    return Selection(indices=idx, scores=least_confidence_scores(probs)[idx])


def _least_confidence(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator) -> Selection:
    return _ranked(least_confidence_scores(probs), n, rng)


def _margin(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator) -> Selection:
    return _ranked(margin_scores(probs), n, rng)


def _entropy(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator) -> Selection:
    return _ranked(entropy_scores(probs), n, rng)


def _diverse(scores: np.ndarray, embeddings: np.ndarray, n: int, rng: np.random.Generator) -> Selection:
    """Uncertainty-weighted k-center greedy on a pool of the most uncertain candidates.

    The first pick is the most uncertain item; each next pick maximises
    `urgency * distance to the nearest item already picked` (cosine distance), so a near-duplicate of
    a picked item scores ~0 while a distinct uncertain item exists.
    """
    n = min(n, scores.shape[0])
    pool = _top(scores, max(DIVERSE_POOL_FACTOR * n, n + DIVERSE_POOL_MIN), rng)
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


def _margin_diverse(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator) -> Selection:
    return _diverse(margin_scores(probs), embeddings, n, rng)


def _entropy_diverse(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator) -> Selection:
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


def _cold_start(probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator) -> Selection:
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


STRATEGIES: dict[str, Strategy] = {
    "random": _random,
    "least_confidence": _least_confidence,
    "margin": _margin,
    "entropy": _entropy,
    "margin_diverse": _margin_diverse,
    "entropy_diverse": _entropy_diverse,
    "cold_start": _cold_start,
}


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


def select(strategy: str, probs: np.ndarray, embeddings: np.ndarray, *, n: int, rng: np.random.Generator) -> Selection:
    """Validate the inputs, then run `STRATEGIES[strategy]`; unknown names raise InvalidInput."""
    probs = np.asarray(probs)
    embeddings = np.asarray(embeddings)
    _validate(strategy, probs, embeddings, n)
    return STRATEGIES[strategy](probs, embeddings, n=int(n), rng=rng)


def default_strategy(*, num_labeled: int, num_classes: int, has_text_head: bool) -> str:
    """Pick a strategy for the project's state.

    - No text head and fewer than 2 labels per class: "cold_start" (nothing trusted to be uncertain
      about yet, so cover the collection with representative images).
    - Otherwise "margin_diverse": the zero-shot or adapted head's top-2 margin is informative, and
      the diversity step stops a batch of near-duplicates from being queued together.
    """
    if not has_text_head and num_labeled < 2 * max(num_classes, 1):
        return "cold_start"
    return "margin_diverse"
