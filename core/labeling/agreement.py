"""Inter-annotator agreement: Cohen's kappa per pair (scikit-learn's), Fleiss' kappa overall, confusion
between two annotators, and the final-label policy (reviewer > majority > single). numpy in, numpy out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from core.errors import InvalidInput


def confusion(a: np.ndarray, b: np.ndarray, *, num_classes: int) -> np.ndarray:
    """K x K counts: rows = annotator a's label, columns = annotator b's, on items both labeled."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise InvalidInput(f"labels: the two annotators' arrays differ in shape {a.shape} vs {b.shape}")
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (a, b), 1)
    return out


def cohen_kappa(a: np.ndarray, b: np.ndarray, *, num_classes: int) -> float:
    """scikit-learn's Cohen's kappa over the K classes; 1.0 when both agree on a single class everywhere
    (where sklearn finds it undefined and warns); nan on no items."""
    from sklearn.metrics import cohen_kappa_score  # sklearn's import costs ~0.5 s: only for the report

    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise InvalidInput(f"labels: the two annotators' arrays differ in shape {a.shape} vs {b.shape}")
    if a.size == 0:
        return float("nan")
    if np.unique(np.concatenate([a, b])).size == 1:
        return 1.0
    return float(cohen_kappa_score(a, b, labels=np.arange(num_classes)))


def fleiss_kappa(counts: np.ndarray) -> float:
    """counts: N items x K classes, how many raters chose each class; every item needs >= 2 raters
    (items may have different numbers of raters: the per-item agreement uses its own n).

    Kept by hand: statsmodels' `stats.inter_rater.fleiss_kappa` assumes the same number of raters on
    every item (it asserts so; ours vary with the overlap slots) and would add statsmodels, patsy and
    pandas at run time; scikit-learn and scipy have no Fleiss' kappa."""
    counts = np.asarray(counts, dtype=np.float64)
    raters = counts.sum(axis=1)
    keep = raters >= 2
    counts, raters = counts[keep], raters[keep]
    if counts.shape[0] == 0:
        return float("nan")
    per_item = ((counts * (counts - 1)).sum(axis=1)) / (raters * (raters - 1))
    p_bar = per_item.mean()
    shares = counts.sum(axis=0) / raters.sum()
    p_e = float((shares**2).sum())
    if p_e >= 1.0:
        return 1.0 if p_bar >= 1.0 else 0.0
    return float((p_bar - p_e) / (1.0 - p_e))


def final_label(votes: Sequence[tuple[str, int]]) -> tuple[int | None, str]:
    """votes: (role, label) per person who labeled the item, in time order. The policy, recorded
    with the result: a reviewer's latest label wins; else a strict majority; else a single label;
    a tie without a reviewer stays unresolved (None, "conflict")."""
    reviewer = [label for role, label in votes if role in ("reviewer", "admin")]
    if reviewer:
        return reviewer[-1], "reviewer"
    labels = [label for _, label in votes]
    if not labels:
        return None, "none"
    if len(labels) == 1:
        return labels[0], "single"
    (top, count), *rest = Counter(labels).most_common()
    if rest and rest[0][1] == count:
        return None, "conflict"
    return top, "majority"
