"""Transductive class means: a class-prototype head estimated from the human labels and the soft
pseudo-labels of the unlabeled pool (EM over a von Mises-Fisher mixture with shared concentration).

Images are centred on the collection mean and re-normalised (the modality gap: raw image-image
cosines share a large common component, so raw prototypes would all look alike), then, given a
`Whitening` (`within_whitening`), the main directions of the classes' spread are shrunk toward
the rest (shrinkage LDA: a class's images vary along them, so they say little about the class) and
the result re-normalised. Each class's mean
direction is `normalise(sum of its labeled images + pool_weight * sum_i q_ic x_i)`, where `q` are the
pool's posteriors; the E-step anchors `q` on the base classifier's probabilities (the zero-shot head,
or uniform in a cold start): `q ∝ base * softmax(scale * x @ M.T)`. Human labels weigh 1, pseudo-labels
`pool_weight` (< 1). In a cold start (`classes`: the labeled ones) the other classes take no pool
mass; a class without a mean gets the row's mean logit (neither favoured nor ruled out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EM_ITERATIONS = 3
WHITEN_RANK = 64
WHITEN_SHRINKAGE = 0.1
WHITEN_ROUNDS = 2


@dataclass(frozen=True)
class ClassMeans:
    """`log_probs(embeddings)`: log softmax of `scale * normalise(x - center) @ means.T` (N x K)."""

    means: np.ndarray   # K x D (unit rows without whitening); all-zero rows for classes never seen
    center: np.ndarray  # D
    scale: float
    known: np.ndarray   # K bool: classes with a mean

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """`scale * cos(x - center, mean_c)`, without an N x D copy of the embeddings."""
        emb = np.asarray(embeddings, dtype=np.float32)
        z = emb @ self.means.T
        z -= self.center @ self.means.T
        sq = np.einsum("ij,ij->i", emb, emb) - 2.0 * (emb @ self.center) + float(self.center @ self.center)
        z *= (np.float32(self.scale) / np.sqrt(np.maximum(sq, 1e-24)))[:, None]
        if not self.known.all():
            z[:, ~self.known] = z[:, self.known].mean(axis=1, keepdims=True) if self.known.any() else 0.0
        return z

    def log_probs(self, embeddings: np.ndarray) -> np.ndarray:
        z = self.logits(embeddings)
        z -= z.max(axis=1, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
        return z


def centred_unit(embeddings: np.ndarray, center: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float32) - center
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


@dataclass(frozen=True)
class Whitening:
    """`x -> normalise(x + basis @ (shrink * basis.T @ x))` on centred unit vectors."""

    basis: np.ndarray   # D x r: the top principal directions of the within-class scatter
    shrink: np.ndarray  # r factors in (-1, 0]: sqrt(eps / (variance + eps)) - 1

    def project(self, x: np.ndarray) -> np.ndarray:
        return (x + ((x @ self.basis) * self.shrink) @ self.basis.T).astype(np.float32, copy=False)

    def apply(self, x: np.ndarray) -> np.ndarray:
        out = self.project(x)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def within_whitening(labeled: np.ndarray, y: np.ndarray, pool: np.ndarray, base_probs: np.ndarray, *,
                     num_classes: int, center: np.ndarray, scale: float, classes: np.ndarray | None = None,
                     rounds: int = WHITEN_ROUNDS) -> Whitening:
    """Shrinkage whitening by the within-class scatter (LDA's metric) of the labeled images and the
    pool, the pool's classes being the EM's soft pseudo-labels; each round re-runs the EM in the
    space the last one whitened. Directions along which a class's images spread are shrunk, those
    that separate the classes stay, so with few classes (whose separation is the pool's main
    variance) it does not erase them as whitening by the pool's total covariance would."""
    xl, xp = centred_unit(labeled, center), centred_unit(pool, center)
    anchor = _anchor(base_probs, classes)
    onehot = _onehot(y, num_classes)
    white: Whitening | None = None
    for _ in range(rounds):
        tl, tp = (xl, xp) if white is None else (white.apply(xl), white.apply(xp))
        _, q = _em(onehot.T @ tl, tp, anchor, scale=scale, pool_weight=1.0, iterations=EM_ITERATIONS)
        white = _scatter_whitening(np.concatenate([xp, xl]), np.concatenate([q, onehot]))
    assert white is not None
    return white


def _scatter_whitening(x: np.ndarray, q: np.ndarray) -> Whitening:
    """Each of the top WHITEN_RANK directions of `sum_i sum_c q_ic (x_i - m_c)(x_i - m_c)' / n` scaled
    by sqrt(eps / (variance + eps)), eps = WHITEN_SHRINKAGE x the largest variance; the rest stay."""
    mass = q.sum(axis=0)
    sums = (x.T @ q).T
    scatter = x.T @ x - (sums.T / np.maximum(mass, 1e-9)) @ sums
    values, vectors = np.linalg.eigh(scatter.astype(np.float64) / max(x.shape[0], 1))
    top = np.argsort(values)[::-1][:WHITEN_RANK]
    eps = WHITEN_SHRINKAGE * max(float(values.max(initial=0.0)), 1e-12)
    shrink = np.sqrt(eps / (np.maximum(values[top], 0.0) + eps)) - 1.0
    return Whitening(basis=vectors[:, top].astype(np.float32), shrink=shrink.astype(np.float32))


def estimate(labeled: np.ndarray, y: np.ndarray, pool: np.ndarray, base_probs: np.ndarray, *, num_classes: int,
             center: np.ndarray, scale: float, pool_weight: float, classes: np.ndarray | None = None,
             iterations: int = EM_ITERATIONS, whiten: Whitening | None = None) -> ClassMeans:
    """EM from the human labels (weight 1) and the pool's soft pseudo-labels (weight `pool_weight`).

    `base_probs` (len(pool) x K): the anchor's posteriors on the pool, which start the EM; `classes`
    (K bool): the classes that may take pool mass (default all). With `whiten` the EM runs in the
    whitened space; the means returned are `W m / median |W x|` (x: the pool's centred unit vectors),
    so `ClassMeans.logits` (centred cosines, no N x D transform) keeps the EM's argmax, each row's
    temperature off by its whitened norm against the pool's median."""
    xl, xp = centred_unit(labeled, center), centred_unit(pool, center)
    if whiten is not None:
        xl, xp = whiten.apply(xl), whiten.apply(xp)
    means, _ = _em(_onehot(y, num_classes).T @ xl, xp, _anchor(base_probs, classes), scale=scale,
                   pool_weight=pool_weight, iterations=iterations)
    known = np.linalg.norm(means, axis=1) > 0
    if classes is not None:
        known &= classes
        means[~known] = 0.0
    if whiten is not None:
        norms = np.linalg.norm(whiten.project(centred_unit(pool, center)), axis=1)
        means = whiten.project(means) / np.float32(max(float(np.median(norms)), 1e-6)) if norms.size else means
    return ClassMeans(means=means, center=np.asarray(center, dtype=np.float32), scale=float(scale), known=known)


def _onehot(y: np.ndarray, num_classes: int) -> np.ndarray:
    onehot = np.zeros((y.size, num_classes), dtype=np.float32)
    onehot[np.arange(y.size), y] = 1.0
    return onehot


def _anchor(base_probs: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    anchor = np.log(np.maximum(base_probs, 1e-30)).astype(np.float32)
    if classes is not None:
        anchor[:, ~classes] = -np.inf
    return anchor


def _em(human: np.ndarray, xp: np.ndarray, anchor: np.ndarray, *, scale: float, pool_weight: float,
        iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """(means, the pool's posteriors): `q = softmax(anchor + scale * xp @ means.T)`, means from both."""
    q = _softmax(anchor.copy())
    means = _means(human, q, xp, pool_weight)
    for _ in range(iterations):
        q = _softmax(anchor + scale * (xp @ means.T))
        means = _means(human, q, xp, pool_weight)
    return means, q


def _means(human: np.ndarray, q: np.ndarray, pool: np.ndarray, pool_weight: float) -> np.ndarray:
    total = human + np.float32(pool_weight) * (pool.T @ q).T  # 6x faster than q.T @ pool (BLAS layouts)
    norm = np.linalg.norm(total, axis=1, keepdims=True)
    return np.where(norm > 1e-6, total / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z
