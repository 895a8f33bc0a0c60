from __future__ import annotations

import numpy as np

from core.labeling.suspects import label_error_suspects, near_duplicate_conflicts


def test_confident_contradiction_is_suspected_and_ranked_first() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.95, 0.05], [0.6, 0.4]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1, 1])  # item 3 labeled 1 but the model is sure of 0; item 4 less so
    found = label_error_suspects(probs, labels)
    assert [s.index for s in found][:1] == [3]
    assert found[0].predicted == 0 and found[0].given == 1
    assert 2 not in [s.index for s in found] and 0 not in [s.index for s in found]


def test_near_duplicates_with_different_labels() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 16)).astype(np.float32)
    emb[5] = emb[0] + 0.01 * rng.normal(size=16)
    emb[4] = emb[1] + 0.01 * rng.normal(size=16)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = np.array([0, 1, 2, 0, 1, 3])  # (0,5) differ, (1,4) agree
    pairs = near_duplicate_conflicts(emb, labels)
    assert [(i, j) for i, j, _ in pairs] == [(0, 5)]
