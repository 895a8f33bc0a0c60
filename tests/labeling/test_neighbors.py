"""core.labeling.neighbors: the faiss path finds the near-duplicate pairs the exact all-pairs path
finds, on a pool with planted duplicates, clusters and noise."""

from __future__ import annotations

import numpy as np

from core.export.split import near_duplicate_groups
from core.labeling.neighbors import close_pairs


def _pool(n: int, dup: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((20, 64)).astype(np.float32)
    emb = centres[rng.integers(0, 20, n)] + 0.9 * rng.standard_normal((n, 64)).astype(np.float32)
    source = rng.choice(n, size=dup, replace=False)
    emb[rng.choice(np.setdiff1d(np.arange(n), source), size=dup, replace=False)] = (
        emb[source] + 0.02 * rng.standard_normal((dup, 64)).astype(np.float32))
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_approximate_pairs_match_exact_pairs() -> None:
    emb = _pool(6000, 300, np.random.default_rng(0))
    exact = close_pairs(emb, threshold=0.95)
    approx = close_pairs(emb, threshold=0.95, exact_limit=100)
    assert exact[0].size >= 300
    found = set(zip(approx[0].tolist(), approx[1].tolist(), strict=True))
    wanted = set(zip(exact[0].tolist(), exact[1].tolist(), strict=True))
    assert found <= wanted and len(found) >= 0.98 * len(wanted)
    assert np.all(exact[0] < exact[1]) and np.all(approx[0] < approx[1])
    np.testing.assert_allclose(np.sum(emb[approx[0]] * emb[approx[1]], axis=1), approx[2], atol=1e-4)


def test_threshold_is_strict_or_inclusive() -> None:
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert close_pairs(emb, threshold=1.0)[0].size == 0
    assert close_pairs(emb, threshold=1.0, strict=False)[0].tolist() == [0]


def test_groups_join_chains() -> None:
    emb = np.array([[1.0, 0.0], [0.97, 0.243], [0.88, 0.475], [-1.0, 0.0]], dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    groups = near_duplicate_groups(emb, threshold=0.95)
    assert groups[0] == groups[1] == groups[2] != groups[3]
