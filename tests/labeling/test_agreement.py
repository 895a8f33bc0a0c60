"""Agreement metrics against values computed by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from core.errors import InvalidInput
from core.labeling.agreement import cohen_kappa, confusion, final_label, fleiss_kappa


def test_cohen_kappa_by_hand() -> None:
    # 10 items, 2 classes. Table [[4,1],[2,3]]: p_o = 0.7; row shares .5/.5, column .6/.4 -> p_e = .5
    a = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    b = np.array([0, 0, 0, 0, 1, 0, 0, 1, 1, 1])
    assert confusion(a, b, num_classes=2).tolist() == [[4, 1], [2, 3]]
    assert cohen_kappa(a, b, num_classes=2) == pytest.approx((0.7 - 0.5) / 0.5)


def test_cohen_kappa_edges() -> None:
    same = np.array([0, 1, 2, 1])
    assert cohen_kappa(same, same, num_classes=3) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(np.array([], dtype=int), np.array([], dtype=int), num_classes=2))
    assert cohen_kappa(np.array([0, 1]), np.array([1, 0]), num_classes=2) == pytest.approx(-1.0)
    with pytest.raises(InvalidInput, match="labels"):
        cohen_kappa(np.array([0, 1]), np.array([0]), num_classes=2)


def test_cohen_kappa_single_class_and_empty_classes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn calls one shared class undefined and warns: not here
        assert cohen_kappa(np.array([2, 2, 2]), np.array([2, 2, 2]), num_classes=4) == 1.0
    assert cohen_kappa(np.array([2, 2]), np.array([1, 1]), num_classes=4) == pytest.approx(0.0)
    # classes nobody used change nothing: the 2-class table [[4,1],[2,3]] padded to 5 classes
    a = np.array([3, 3, 3, 3, 3, 1, 1, 1, 1, 1])
    b = np.array([3, 3, 3, 3, 1, 3, 3, 1, 1, 1])
    assert cohen_kappa(a, b, num_classes=5) == pytest.approx(0.4)


def test_fleiss_kappa_wikipedia_example() -> None:
    # The worked example from Fleiss (1971) as given on Wikipedia: 10 items, 14 raters, 5 classes.
    counts = np.array([
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ])
    assert fleiss_kappa(counts) == pytest.approx(0.210, abs=1e-3)


def test_final_label_policy() -> None:
    assert final_label([("annotator", 1), ("annotator", 2), ("reviewer", 2)]) == (2, "reviewer")
    assert final_label([("annotator", 1), ("annotator", 1), ("annotator", 2)]) == (1, "majority")
    assert final_label([("annotator", 3)]) == (3, "single")
    assert final_label([("annotator", 1), ("annotator", 2)]) == (None, "conflict")
    assert final_label([]) == (None, "none")
