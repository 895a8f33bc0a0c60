"""Semi-supervised adaptation: learn from the unlabeled pool too, chosen on held-out human labels.

`fit_semi` fits the text-anchored probe on the human labels (core/labeling/adapt.py), then tries
transductive class means (core/labeling/classmeans.py: EM over the pool's soft pseudo-labels, human
labels weighing 1 and pseudo-labels `pool_weight`, anchored on the zero-shot head or uniform in a cold
start) on top of the unadapted head. Each candidate strength is scored on held-out folds of the
human labels (the held-out items go back into the pool as unlabeled images; with a head, weighed so
zero-shot's held-out accuracy is its mean confidence on the pool, see adapt.fold_weights, since the
queue labels mostly images zero-shot gets wrong); the class means replace
the probe only when they beat zero-shot clearly (the probe's paired test) and the probe's own
held-out accuracy. With a text head they touch only images under the probe's gate (zero-shot top-2
gap at most the largest gap at which zero-shot was caught wrong), so confident zero-shot predictions
stand. With no unlabeled image, too few labels, or a pool *sample* of fewer than MIN_POOL_PER_CLASS
images per class (ImageNet's 1,000 classes on 2,000 of 6,750 images: the EM's means are noise, and
the folds, each held-out image in the pool its class mean is drawn from, once passed class means 5
points below zero-shot), the result is the probe exactly. A whole pool that is small (late in a
project) is used as it is: the labels then carry the means, and the probe is far below them in a
cold start (150 ImageNet classes without a head, 400 labels: 64.4% with the probe, 68.7% at 300).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from core.labeling.adapt import (
    Classifier,
    clearly_better,
    fit_classifier,
    fold_weights,
    softmax,
    stratified_folds,
    top_gap,
    wrong_gap_gate,
)
from core.labeling.classmeans import Whitening, estimate, within_whitening

POOL_SAMPLE = 4000
POOL_CELLS = 2_000_000  # pool sample x classes: the EM's cost; fewer pool images when there are many classes
MEANS_SCALE = 20.0
# (weight of the class means' log-probabilities, weight of a pseudo-label against a human label)
CANDIDATES = ((1.0, 0.3), (1.0, 1.0))
MIN_LABELS = 4
MIN_POOL_PER_CLASS = 5  # pool-sample images per class below which class means are not tried


def fit_semi(embeddings: np.ndarray, labels: np.ndarray, *, num_classes: int, text_head: np.ndarray | None,
             logit_scale: float = 100.0, rng: np.random.Generator, center: np.ndarray | None = None) -> Classifier:
    """The probe on the human labels (`labels >= 0`), or class means from them and the pool (`-1`)."""
    emb = np.asarray(embeddings, dtype=np.float32)
    y_all = np.asarray(labels).astype(np.int64, copy=False)
    labeled = np.flatnonzero(y_all >= 0)
    mu = emb.mean(axis=0) if center is None else np.asarray(center, dtype=np.float32)
    unlabeled = np.flatnonzero(y_all < 0)
    size = int(np.clip(POOL_CELLS // num_classes, 1000, POOL_SAMPLE))
    pool = unlabeled if unlabeled.size <= size else np.sort(rng.choice(unlabeled, size, replace=False))
    expected = None
    if text_head is not None and pool.size:  # zero-shot's mean confidence on the pool: its expected accuracy
        expected = float(softmax(logit_scale * (emb[pool] @ np.asarray(text_head, np.float32).T)).max(axis=1).mean())
    probe = fit_classifier(emb[labeled], y_all[labeled], num_classes=num_classes, text_head=text_head,
                           logit_scale=logit_scale, rng=rng, center=mu, expected_accuracy=expected)
    if labeled.size < MIN_LABELS or pool.size == 0 or pool.size < min(MIN_POOL_PER_CLASS * num_classes, unlabeled.size):
        return probe
    with threadpool_limits(limits=1, user_api="blas"):
        return _semi(probe, emb[labeled], y_all[labeled], emb[pool], mu=mu, rng=rng, expected=expected)


def _semi(probe: Classifier, xl: np.ndarray, y: np.ndarray, xp: np.ndarray, *, mu: np.ndarray,
          rng: np.random.Generator, expected: float | None) -> Classifier:
    base = replace(probe, weights=None, offset=None, classes=None, gate=np.inf, penalty=None)
    z_l, z_p = base.zero_shot_logits(xl), base.zero_shot_logits(xp)
    cold = probe.text_head is None
    gaps = top_gap(z_l)
    wrong = np.argmax(z_l, axis=1) != y
    gate = np.inf if cold else (float(gaps[wrong].max()) if wrong.any() else -np.inf)
    if gate == -np.inf:
        return probe
    seen = _seen(y, probe.num_classes) if cold else None
    white = _whitening(xl, y, xp, z_p, mu=mu, cold=cold, seen=seen)
    choice = _choose(xl, y, xp, z_l, z_p, gaps, mu=mu, cold=cold, probe=probe, rng=rng, expected=expected,
                     white=white)
    if choice is None:
        return probe
    weight, pool_weight = choice
    means = estimate(xl, y, xp, softmax(z_p), num_classes=probe.num_classes, center=mu, scale=MEANS_SCALE,
                     pool_weight=pool_weight, classes=seen, whiten=white)
    return replace(base, means=means, means_weight=weight, gate=gate, version=f"adapted-n{y.size}-class-means")


def _whitening(xl: np.ndarray, y: np.ndarray, xp: np.ndarray, z_p: np.ndarray, *, mu: np.ndarray, cold: bool,
               seen: np.ndarray | None) -> Whitening:
    """The within-class whitening of the pool sample; with a head from the pool alone, so that
    held-out labels do not shape the space the folds judge in."""
    labeled = slice(None) if cold else slice(0, 0)
    return within_whitening(xl[labeled], y[labeled], xp, softmax(z_p), num_classes=z_p.shape[1], center=mu,
                            scale=MEANS_SCALE, classes=seen)


def _seen(y: np.ndarray, k: int) -> np.ndarray:
    seen = np.zeros(k, dtype=bool)
    seen[y] = True
    return seen


def _choose(xl: np.ndarray, y: np.ndarray, xp: np.ndarray, z_l: np.ndarray, z_p: np.ndarray, gaps: np.ndarray, *,
            mu: np.ndarray, cold: bool, probe: Classifier, rng: np.random.Generator,
            expected: float | None, white: Whitening) -> tuple[float, float] | None:
    """The candidate with the best held-out accuracy, if it beats zero-shot (paired test) and the probe.

    In a cold start zero-shot is chance and the class means are the default: they stand unless the
    probe's held-out accuracy is higher (held-out labels of a class with no other label are wrong
    for both, so at one label per class the folds cannot tell, and the pool's structure is what
    pays there: docs/learning.md)."""
    fold = stratified_folds(y, rng)
    right = np.zeros((len(CANDIDATES), y.size), dtype=bool)
    k = z_l.shape[1]
    for f in range(fold.max() + 1):
        train, test = fold != f, fold == f
        pool = np.concatenate([xp, xl[test]])
        base = softmax(np.concatenate([z_p, z_l[test]]))
        gate = np.inf if cold else wrong_gap_gate(gaps[train], np.argmax(z_l[train], axis=1) != y[train])
        under = gaps[test] <= gate
        for c, (weight, pool_weight) in enumerate(CANDIDATES):
            means = estimate(xl[train], y[train], pool, base, num_classes=k, center=mu, scale=MEANS_SCALE,
                             pool_weight=pool_weight, classes=_seen(y[train], k) if cold else None, whiten=white)
            logits = z_l[test] + weight * under[:, None] * means.log_probs(xl[test])
            right[c, test] = np.argmax(logits, axis=1) == y[test]
    zs_right = np.zeros(y.size, dtype=bool) if cold else np.argmax(z_l, axis=1) == y
    strata = fold_weights(zs_right, expected)
    best = int(np.argmax(right @ strata))
    accuracy = float(right[best] @ strata / strata.sum())
    if cold:
        return CANDIDATES[best] if probe.cv_accuracy is None or accuracy >= probe.cv_accuracy else None
    beats_probe = probe.weights is None or probe.cv_accuracy is None or accuracy > probe.cv_accuracy
    return CANDIDATES[best] if clearly_better(right[best], zs_right, strata) and beats_probe else None

