"""Label-error suspects (confident-learning style, out-of-fold) and near-duplicate conflicts.

numpy in, numpy out. A label never vouches for itself: each labeled item is scored by a classifier
fitted on the other folds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.labeling import neighbors
from core.labeling.adapt import fit_classifier

FOLDS = 5
DUPLICATE_COSINE = 0.95


@dataclass(frozen=True)
class Suspect:
    index: int          # into the labeled arrays given
    given: int          # class index of the human label
    predicted: int      # class index the out-of-fold model prefers
    p_predicted: float
    p_given: float

    @property
    def score(self) -> float:
        return self.p_predicted - self.p_given


def out_of_fold_probs(
    embeddings: np.ndarray, labels: np.ndarray, *, num_classes: int, text_head: np.ndarray | None,
    logit_scale: float, rng: np.random.Generator, center: np.ndarray | None = None, folds: int = FOLDS,
) -> np.ndarray:
    n = labels.shape[0]
    probs = np.zeros((n, num_classes), dtype=np.float32)
    fold_of = rng.permutation(n) % max(min(folds, n), 1)
    for fold in np.unique(fold_of):
        held = fold_of == fold
        model = fit_classifier(embeddings[~held], labels[~held], num_classes=num_classes, text_head=text_head,
                               logit_scale=logit_scale, rng=rng, center=center)
        probs[held] = model.predict_proba(embeddings[held])
    return probs


def label_error_suspects(probs: np.ndarray, labels: np.ndarray) -> list[Suspect]:
    """Confident learning: a label is suspect when another class's out-of-fold probability reaches
    that class's own threshold (the mean probability the model gives to items labeled with it).
    Ranked by how much more the model believes the other class than the given one."""
    k = probs.shape[1]
    thresholds = np.ones(k, dtype=np.float32)
    for j in range(k):
        members = labels == j
        if members.any():
            thresholds[j] = probs[members, j].mean()
    out = []
    for i, given in enumerate(labels):
        row = probs[i].copy()
        row[given] = -1.0
        confident = np.flatnonzero(row >= thresholds)
        if confident.size:
            best = int(confident[np.argmax(row[confident])])
            if probs[i, best] > probs[i, given]:
                out.append(Suspect(i, int(given), best, float(probs[i, best]), float(probs[i, given])))
    return sorted(out, key=lambda s: -s.score)


def near_duplicate_conflicts(
    embeddings: np.ndarray, labels: np.ndarray, *, threshold: float = DUPLICATE_COSINE,
) -> list[tuple[int, int, float]]:
    """Pairs (i, j, cosine) of labeled items above the threshold whose labels differ (all pairs up to
    neighbors.EXACT_LIMIT items, through the clustered self-join above)."""
    rows, cols, sims = neighbors.close_pairs(embeddings, threshold=threshold, strict=False)
    differ = labels[rows] != labels[cols]
    pairs = [(int(i), int(j), float(c)) for i, j, c in zip(rows[differ], cols[differ], sims[differ], strict=True)]
    return sorted(pairs, key=lambda p: -p[2])
