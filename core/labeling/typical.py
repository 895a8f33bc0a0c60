"""Typical-first selection for a cold start (TypiClust, Hacohen et al. 2022): cluster the collection
into (labeled + wanted) groups, then take the most typical image (densest: nearest to its
neighbours) of each cluster no label covers yet, biggest clusters first.

The images are centred on their mean and re-normalised first, as the class means see them, and
among uncovered clusters those far from every labeled class come first (on Flowers at 150 labels,
6 seeds: 88.3% against 86.6% for centred images alone). Clustering the labeled images together with
the candidates is what keeps the picks new: a cluster
that holds a labeled image is covered, so the next round looks elsewhere (the plain `cold_start`
re-clusters the candidates alone and keeps returning to the same dense regions).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Clusterer = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
NEIGHBOURS = 20
MAX_CLUSTERS = 400


def typical_first(candidates: np.ndarray, labeled: np.ndarray, *, n: int, rng: np.random.Generator,
                  cluster: Clusterer, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices into `candidates`, scores): one typical image per cluster, uncovered and big first.

    `cluster(points, k, rng) -> assignments` is injected (the strategies' k-means). With the
    `labels` of the labeled images, uncovered clusters are ordered by size x novelty^2, novelty being
    their members' mean `1 - max cosine` to the labeled classes' means: a cluster near a known class
    is likely another mode of it, one far from all of them a class with no label yet."""
    points = np.concatenate([candidates, labeled]).astype(np.float32)
    points -= points.mean(axis=0)  # the modality gap: raw image cosines share a common part (classmeans.py)
    points /= np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    k = int(min(points.shape[0], max(n, min(labeled.shape[0] + n, MAX_CLUSTERS))))
    assign = cluster(points, k, rng)
    own, covered = assign[: candidates.shape[0]], np.bincount(assign[candidates.shape[0]:], minlength=k)
    sizes = np.bincount(own, minlength=k)
    weight = sizes * _novelty(points, labels, own, sizes) ** 2 if labels is not None and labels.size else sizes
    order = np.lexsort((-weight, covered))  # uncovered first, then biggest (and newest)
    picks, scores = [], []
    for c in order[sizes[order] > 0]:
        members = np.flatnonzero(own == c)
        picks.append(int(members[np.argmax(_typicality(points[members]))]))
        scores.append(sizes[c] / (1.0 + covered[c]) / candidates.shape[0])
        if len(picks) == n:
            break
    return np.asarray(picks, dtype=np.int64), np.asarray(scores, dtype=np.float64)


def _novelty(points: np.ndarray, labels: np.ndarray, own: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per cluster: its candidates' mean `1 - max_c cos(x, mean of labeled class c)`."""
    candidates, labeled = points[: own.size], points[own.size:]
    classes, index = np.unique(labels, return_inverse=True)
    means = np.zeros((classes.size, points.shape[1]), dtype=np.float32)
    np.add.at(means, index, labeled)
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    far = 1.0 - (candidates @ means.T).max(axis=1)
    return np.bincount(own, weights=far, minlength=sizes.size) / np.maximum(sizes, 1)


def _typicality(members: np.ndarray) -> np.ndarray:
    """1 / mean cosine distance to the NEIGHBOURS nearest members (within the cluster)."""
    if members.shape[0] <= 2:
        return np.ones(members.shape[0])
    sample = members if members.shape[0] <= 2000 else members[:: members.shape[0] // 2000 + 1]
    distance = np.maximum(1.0 - members @ sample.T, 0.0)
    near = min(NEIGHBOURS, sample.shape[0] - 1)
    nearest = np.partition(distance, near, axis=1)[:, 1: near + 1]
    return 1.0 / (nearest.mean(axis=1) + 1e-6)
