"""Transductive class means: a class-prototype head estimated from the human labels and the soft
pseudo-labels of the unlabeled pool (EM over a von Mises-Fisher mixture with shared concentration).

Images are centred on the collection mean and re-normalised (the modality gap: raw image-image
cosines share a large common component, so raw prototypes would all look alike). Each class's mean
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


@dataclass(frozen=True)
class ClassMeans:
    """`log_probs(embeddings)`: log softmax of `scale * normalise(x - center) @ means.T` (N x K)."""

    means: np.ndarray   # K x D unit rows; all-zero rows for classes never seen
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


def estimate(labeled: np.ndarray, y: np.ndarray, pool: np.ndarray, base_probs: np.ndarray, *, num_classes: int,
             center: np.ndarray, scale: float, pool_weight: float, classes: np.ndarray | None = None,
             iterations: int = EM_ITERATIONS) -> ClassMeans:
    """EM from the human labels (weight 1) and the pool's soft pseudo-labels (weight `pool_weight`).

    `base_probs` (len(pool) x K): the anchor's posteriors on the pool, which start the EM; `classes`
    (K bool): the classes that may take pool mass (default all)."""
    xl, xp = centred_unit(labeled, center), centred_unit(pool, center)
    onehot = np.zeros((y.size, num_classes), dtype=np.float32)
    onehot[np.arange(y.size), y] = 1.0
    human = onehot.T @ xl
    anchor = np.log(np.maximum(base_probs, 1e-30)).astype(np.float32)
    if classes is not None:
        anchor[:, ~classes] = -np.inf
    q = _softmax(anchor.copy())
    means = _means(human, q, xp, pool_weight)
    for _ in range(iterations):
        z = anchor + scale * (xp @ means.T)
        q = _softmax(z)
        means = _means(human, q, xp, pool_weight)
    known = np.linalg.norm(means, axis=1) > 0
    if classes is not None:
        known &= classes
        means[~known] = 0.0
    return ClassMeans(means=means, center=np.asarray(center, dtype=np.float32), scale=float(scale), known=known)


def _means(human: np.ndarray, q: np.ndarray, pool: np.ndarray, pool_weight: float) -> np.ndarray:
    total = human + np.float32(pool_weight) * (pool.T @ q).T  # 6x faster than q.T @ pool (BLAS layouts)
    norm = np.linalg.norm(total, axis=1, keepdims=True)
    return np.where(norm > 1e-6, total / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z
