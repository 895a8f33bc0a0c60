"""Strategies: one contract run against every registered strategy, then what each one should pick."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InvalidInput
from core.labeling.context import LabeledContext, zero_shot_context
from core.labeling.strategies import DEFAULT_STRATEGY, STRATEGIES, Selection, auto_phase, select


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _random_inputs(n: int, k: int = 5, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 3
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return probs.astype(np.float32), _unit(rng.normal(size=(n, d)))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
class TestStrategyContract:
    def test_length_unique_in_range(self, name: str) -> None:
        probs, emb = _random_inputs(60)
        sel = select(name, probs, emb, n=12, rng=np.random.default_rng(1))
        assert isinstance(sel, Selection)
        assert sel.indices.dtype == np.int64 and sel.indices.shape == (12,)
        assert sel.scores.shape == (12,)
        assert np.unique(sel.indices).size == 12
        assert sel.indices.min() >= 0 and sel.indices.max() < 60
        assert np.all(np.isfinite(sel.scores))

    def test_n_larger_than_pool_returns_everything(self, name: str) -> None:
        probs, emb = _random_inputs(7)
        sel = select(name, probs, emb, n=50, rng=np.random.default_rng(1))
        assert sorted(sel.indices.tolist()) == list(range(7))

    def test_n_zero_and_empty_pool(self, name: str) -> None:
        probs, emb = _random_inputs(9)
        assert select(name, probs, emb, n=0, rng=np.random.default_rng(1)).indices.shape == (0,)
        empty = select(name, probs[:0], emb[:0], n=3, rng=np.random.default_rng(1))
        assert empty.indices.shape == (0,) and empty.scores.shape == (0,)

    def test_same_seed_same_answer(self, name: str) -> None:
        probs, emb = _random_inputs(80)
        a = select(name, probs, emb, n=10, rng=np.random.default_rng(7))
        b = select(name, probs, emb, n=10, rng=np.random.default_rng(7))
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)

    def test_single_class_probs(self, name: str) -> None:
        probs = np.ones((6, 1), dtype=np.float32)
        sel = select(name, probs, _random_inputs(6)[1], n=3, rng=np.random.default_rng(0))
        assert np.unique(sel.indices).size == 3 and not np.any(np.isnan(sel.scores))


def test_random_differs_by_seed() -> None:
    probs, emb = _random_inputs(200)
    a = select("random", probs, emb, n=20, rng=np.random.default_rng(0)).indices
    b = select("random", probs, emb, n=20, rng=np.random.default_rng(1)).indices
    assert not np.array_equal(a, b)


PROBS = np.array([
    [0.90, 0.05, 0.05],   # confident
    [0.40, 0.30, 0.30],   # flattest max (least confidence), high entropy
    [0.50, 0.495, 0.005],  # smallest top1-top2 gap (margin)
    [0.34, 0.33, 0.33],   # near uniform: highest entropy and lowest max
    [0.70, 0.20, 0.10],
], dtype=np.float32)


def test_least_confidence_picks_flattest_max() -> None:
    sel = select("least_confidence", PROBS, _random_inputs(5)[1], n=2, rng=np.random.default_rng(0))
    assert sel.indices.tolist() == [3, 1]
    assert sel.scores[0] == pytest.approx(0.66, abs=1e-6)


def test_margin_picks_smallest_gap() -> None:
    sel = select("margin", PROBS, _random_inputs(5)[1], n=2, rng=np.random.default_rng(0))
    assert sel.indices.tolist() == [2, 3]


def test_margin_prefers_close_top_two_over_flat_max() -> None:
    probs = np.array([[0.40, 0.30, 0.30], [0.50, 0.47, 0.03], [0.9, 0.05, 0.05]], dtype=np.float32)
    emb = _random_inputs(3)[1]
    assert select("margin", probs, emb, n=1, rng=np.random.default_rng(0)).indices.tolist() == [1]
    assert select("least_confidence", probs, emb, n=1, rng=np.random.default_rng(0)).indices.tolist() == [0]


def test_entropy_picks_highest_entropy() -> None:
    sel = select("entropy", PROBS, _random_inputs(5)[1], n=3, rng=np.random.default_rng(0))
    assert sel.indices.tolist() == [3, 1, 4]
    assert np.all(np.diff(sel.scores) <= 0)


def _duplicates_case() -> tuple[np.ndarray, np.ndarray]:
    """Ten near-duplicates that are the most uncertain, plus ten distinct, slightly less uncertain items."""
    rng = np.random.default_rng(3)
    base = _unit(rng.normal(size=(1, 32)))
    dups = _unit(base + 0.01 * rng.normal(size=(10, 32)))
    distinct = _unit(rng.normal(size=(10, 32)))
    confident = _unit(rng.normal(size=(30, 32)))
    emb = np.concatenate([dups, distinct, confident])
    top = np.concatenate([np.full(10, 0.34), np.full(10, 0.40), np.full(30, 0.98)])
    probs = np.stack([top, (1 - top) * 0.5 + 0.001, (1 - top) * 0.5 - 0.001], axis=1)
    probs = probs / probs.sum(axis=1, keepdims=True)
    return probs.astype(np.float32), emb


@pytest.mark.parametrize("name", ["margin_diverse", "entropy_diverse"])
def test_diverse_does_not_queue_near_duplicates(name: str) -> None:
    probs, emb = _duplicates_case()
    plain = select(name.replace("_diverse", ""), probs, emb, n=5, rng=np.random.default_rng(0))
    assert set(plain.indices.tolist()) <= set(range(10))  # the plain version takes the duplicates
    sel = select(name, probs, emb, n=5, rng=np.random.default_rng(0))
    assert sum(int(i) < 10 for i in sel.indices) == 1
    assert all(int(i) < 20 for i in sel.indices)  # still only uncertain items


def test_cold_start_picks_one_per_cluster_biggest_first() -> None:
    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(4, 24))) * 3
    sizes = [40, 25, 15, 8]
    emb = _unit(np.concatenate([c + 0.1 * rng.normal(size=(s, 24)) for c, s in zip(centres, sizes, strict=True)]))
    cluster = np.repeat(np.arange(4), sizes)
    probs = np.full((emb.shape[0], 3), 1 / 3, dtype=np.float32)
    sel = select("cold_start", probs, emb, n=4, rng=np.random.default_rng(5))
    assert cluster[sel.indices].tolist() == [0, 1, 2, 3]
    assert np.all(np.diff(sel.scores) <= 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"strategy": "nope"}, "least_confidence"),
        ({"n": -1}, "n:"),
        ({"probs": np.full((4, 3), 0.5)}, "sum to 1"),
        ({"probs": np.full((4, 3), np.nan)}, "finite"),
        ({"embeddings": np.zeros((5, 8))}, "embeddings"),
    ],
)
def test_select_rejects_bad_input(kwargs: dict[str, object], field: str) -> None:
    probs, emb = _random_inputs(4, k=3, d=8)
    args: dict[str, object] = {"strategy": "margin", "probs": probs, "embeddings": emb, "n": 2}
    args.update(kwargs)
    with pytest.raises(InvalidInput, match=field):
        select(args.pop("strategy"), args.pop("probs"), args.pop("embeddings"),  # type: ignore[arg-type]
               n=args.pop("n"), rng=np.random.default_rng(0))  # type: ignore[arg-type]


def test_large_pool_is_handled() -> None:
    probs, emb = _random_inputs(20_000, k=10, d=64)
    for name in STRATEGIES:
        sel = select(name, probs, emb, n=10, rng=np.random.default_rng(0))
        assert np.unique(sel.indices).size == 10


def _context(emb: np.ndarray, labels: list[int], k: int, *, head: bool) -> LabeledContext:
    text = _unit(np.random.default_rng(9).normal(size=(k, emb.shape[1]))) if head else None
    return zero_shot_context(emb[: len(labels)], np.array(labels), head=text, logit_scale=100.0, num_classes=k)


def test_auto_is_the_default_and_hands_over_from_typical_first() -> None:
    emb = _random_inputs(30, k=3)[1]
    assert DEFAULT_STRATEGY == "auto" and "auto" in STRATEGIES
    assert auto_phase(None) == "error_seeking"
    assert auto_phase(_context(emb, [], 3, head=True)) == "error_seeking"
    assert auto_phase(_context(emb, [0, 1], 3, head=False)) == "typical_first"  # class 2 has no label yet
    assert auto_phase(_context(emb, [0, 1, 2], 3, head=False)) == "error_seeking"  # every class covered
    assert auto_phase(_context(emb, [0, 0, 1], 3, head=False)) == "error_seeking"  # one label per class on average


@pytest.mark.parametrize("name", ["least_confidence", "margin", "entropy", "margin_diverse", "entropy_diverse"])
def test_ties_are_broken_at_random_not_by_position(name: str) -> None:
    """With no head yet every row is uniform: the pick must not be the first rows (often one class)."""
    probs = np.full((500, 4), 0.25, dtype=np.float32)
    emb = _random_inputs(500)[1]
    a = select(name, probs, emb, n=20, rng=np.random.default_rng(0)).indices
    b = select(name, probs, emb, n=20, rng=np.random.default_rng(1)).indices
    assert not np.array_equal(a, b)
    assert a.max() >= 100


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_contract_holds_with_a_context(name: str) -> None:
    probs, emb = _random_inputs(60)
    for head in (False, True):
        context = _context(_random_inputs(9, seed=4)[1], [0, 1, 2, 3, 4, 0, 1, 2, 3], 5, head=head)
        sel = select(name, probs, emb, n=12, rng=np.random.default_rng(1), context=context)
        assert np.unique(sel.indices).size == 12 and np.all(np.isfinite(sel.scores))
        again = select(name, probs, emb, n=12, rng=np.random.default_rng(1), context=context)
        assert np.array_equal(sel.indices, again.indices)


@pytest.mark.parametrize(("change", "field"), [
    ({"num_classes": 4}, "num_classes"), ({"labels": np.array([0, 9])}, "labels"),
    ({"embeddings": np.zeros((2, 3), np.float32)}, "embeddings")])
def test_bad_context_is_named(change: dict[str, object], field: str) -> None:
    probs, emb = _random_inputs(10)
    context = _context(emb, [0, 1], 5, head=True)
    bad = LabeledContext(**{**context.__dict__, **change})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=field):
        select("auto", probs, emb, n=2, rng=np.random.default_rng(0), context=bad)


def _blobs(sizes: list[int], d: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(len(sizes), d))) * 3
    emb = _unit(np.concatenate([c + 0.1 * rng.normal(size=(s, d)) for c, s in zip(centres, sizes, strict=True)]))
    return emb, np.repeat(np.arange(len(sizes)), sizes)


def test_typical_first_skips_clusters_the_labels_cover() -> None:
    emb, cluster = _blobs([40, 30, 20, 10])
    probs = np.full((emb.shape[0], 4), 0.25, dtype=np.float32)
    plain = select("typical_first", probs, emb, n=4, rng=np.random.default_rng(0))
    assert cluster[plain.indices].tolist() == [0, 1, 2, 3]  # one per cluster, biggest first
    covered = _context(emb[cluster == 0][:1], [0], 4, head=False)  # 1 label + 3 wanted: 4 clusters
    sel = select("typical_first", probs, emb, n=3, rng=np.random.default_rng(0), context=covered)
    assert cluster[sel.indices].tolist() == [1, 2, 3]


def test_typical_first_takes_the_densest_member() -> None:
    emb, _ = _blobs([50])
    outlier = _unit(emb[:1] + 0.5)
    emb = np.concatenate([outlier, emb])
    sel = select("typical_first", np.full((51, 2), 0.5, dtype=np.float32), emb, n=1, rng=np.random.default_rng(0))
    density = (emb @ emb.T).mean(axis=1)
    assert int(sel.indices[0]) != 0 and density[sel.indices[0]] > np.median(density)


def test_error_seeking_prefers_classes_the_corrections_caught() -> None:
    """Equal margins: the candidates torn between classes 0 and 1, which corrections showed confused,
    come before those torn between 2 and 3."""
    emb = _random_inputs(40, k=4, d=16)[1]
    probs = np.tile(np.array([[0.5, 0.4, 0.05, 0.05]], dtype=np.float32), (40, 1))
    probs[20:] = [0.05, 0.05, 0.5, 0.4]
    context = LabeledContext(embeddings=emb[:6], labels=np.array([1, 1, 0, 2, 3, 2]),
                             predicted=np.array([0, 0, 0, 2, 3, 2]), confidence=np.full(6, 0.9), num_classes=4,
                             has_text_head=True)
    sel = select("error_seeking", probs, emb, n=10, rng=np.random.default_rng(0), context=context)
    assert all(int(i) < 20 for i in sel.indices)
    plain = select("margin_diverse", probs, emb, n=10, rng=np.random.default_rng(0))
    assert any(int(i) >= 20 for i in plain.indices)
