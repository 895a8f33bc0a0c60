"""Semi-supervised adaptation: the probe exactly when there is nothing to learn from the pool, a real
gain from the pool's structure in a cold start, and never below zero-shot on real CLIP embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.labeling.adapt import clearly_better, fit_classifier, fold_weights
from core.labeling.classmeans import centred_unit, estimate, within_whitening
from core.labeling.semi import fit_semi
from tests.helpers import load_classes, unit


def _clusters(seed: int = 0, k: int = 8, per: int = 60, d: int = 32,
              spread: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """k elongated clusters on a shared common direction (a modality-gap-like offset)."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(k, d)))
    common = unit(rng.normal(size=(1, d)))
    y = np.repeat(np.arange(k), per)
    return unit(2.0 * common + centres[y] + spread * rng.normal(size=(y.size, d)) / np.sqrt(d) * 3), y


def _probs(clf: object, emb: np.ndarray) -> np.ndarray:
    return clf.predict_proba(emb)  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("head", [False, True])
def test_no_pseudo_labels_is_the_probe_exactly(head: bool) -> None:
    """With no unlabeled image there is no pseudo-label: the result is the current adaptation."""
    emb, y = _clusters()
    text = unit(np.random.default_rng(1).normal(size=(8, emb.shape[1]))) if head else None
    labeled = np.random.default_rng(2).choice(y.size, 40, replace=False)
    probe = fit_classifier(emb[labeled], y[labeled], num_classes=8, text_head=text, rng=np.random.default_rng(3),
                           center=emb.mean(axis=0))
    semi = fit_semi(emb[labeled], y[labeled], num_classes=8, text_head=text, rng=np.random.default_rng(3),
                    center=emb.mean(axis=0))
    assert semi.means is None and semi.version == probe.version
    assert np.array_equal(_probs(semi, emb), _probs(probe, emb))


def test_few_labels_is_the_probe_exactly() -> None:
    emb, y = _clusters()
    labels = np.full(y.size, -1)
    labels[:3] = y[:3]
    probe = fit_classifier(emb[:3], y[:3], num_classes=8, text_head=None, rng=np.random.default_rng(0),
                           center=emb.mean(axis=0))
    semi = fit_semi(emb, labels, num_classes=8, text_head=None, rng=np.random.default_rng(0))
    assert np.array_equal(_probs(semi, emb), _probs(probe, emb))


def test_cold_start_learns_from_the_pool() -> None:
    emb, y = _clusters(spread=1.0)
    rng = np.random.default_rng(4)
    labeled = np.concatenate([rng.choice(np.flatnonzero(y == c), 2, replace=False) for c in range(8)])
    labels = np.full(y.size, -1)
    labels[labeled] = y[labeled]
    rest = labels < 0
    probe = fit_classifier(emb[labeled], y[labeled], num_classes=8, text_head=None, rng=np.random.default_rng(0),
                           center=emb.mean(axis=0))
    semi = fit_semi(emb, labels, num_classes=8, text_head=None, rng=np.random.default_rng(0))
    acc_probe = (np.argmax(_probs(probe, emb[rest]), axis=1) == y[rest]).mean()
    acc_semi = (np.argmax(_probs(semi, emb[rest]), axis=1) == y[rest]).mean()
    assert semi.means is not None and semi.version.endswith("-class-means")
    assert acc_semi > acc_probe + 0.05, (acc_semi, acc_probe)


def test_class_means_weigh_human_labels_above_pseudo_labels() -> None:
    """A pool the anchor wrongly calls class 0 pulls class 0's mean away from its labeled images less
    when pseudo-labels weigh less."""
    emb, y = _clusters(k=2, per=30)
    labeled = np.flatnonzero(y == 0)[:3]
    pool = emb[y == 1]
    base = np.tile([[1.0, 0.0]], (pool.shape[0], 1))
    own = emb[labeled].mean(axis=0) - emb.mean(axis=0)
    pulls = []
    for weight in (0.01, 0.3, 1.0):
        means = estimate(emb[labeled], y[labeled], pool, base, num_classes=2, center=emb.mean(axis=0), scale=20.0,
                         pool_weight=weight, iterations=0)
        pulls.append(float(means.means[0] @ own))
    assert pulls[0] > pulls[1] > pulls[2]


def test_cold_start_classes_without_labels_take_no_pool_mass() -> None:
    emb, y = _clusters(k=3, per=20)
    means = estimate(emb[:2], np.array([0, 0]), emb, np.full((y.size, 3), 1 / 3), num_classes=3,
                     center=emb.mean(axis=0), scale=20.0, pool_weight=1.0, classes=np.array([True, False, False]))
    assert means.known.tolist() == [True, False, False]
    logits = means.logits(emb)
    assert np.allclose(logits[:, 1], logits[:, 2]) and np.all(np.isfinite(logits))


def _unlabeled_accuracy(emb: np.ndarray, y: np.ndarray, head: np.ndarray | None, labeled: np.ndarray,
                        seed: int) -> float:
    labels = np.full(y.size, -1)
    labels[labeled] = y[labeled]
    clf = fit_semi(emb, labels, num_classes=int(y.max()) + 1, text_head=head, rng=np.random.default_rng(seed))
    rest = labels < 0
    return float((np.argmax(_probs(clf, emb[rest]), axis=1) == y[rest]).mean())


@pytest.mark.assets
@pytest.mark.parametrize(("name", "classes", "budgets"), [("pets25-val", None, (10, 40, 120)),
                                                          ("imagenet7k", 60, (60, 180))])
def test_never_below_zero_shot_on_real_clip(embeddings_dir: Path, name: str, classes: int | None,
                                            budgets: tuple[int, ...]) -> None:
    emb, y, head = load_classes(embeddings_dir / f"{name}-clip-vitb32.npz", classes=classes)
    assert head is not None
    zs_right = np.argmax(emb @ head.T, axis=1) == y
    for budget in budgets:
        semi, zero = [], []
        for seed in range(3):
            labeled = np.random.default_rng(seed).choice(y.size, budget, replace=False)
            semi.append(_unlabeled_accuracy(emb, y, head, labeled, seed))
            zero.append(float(np.delete(zs_right, labeled).mean()))
        assert np.mean(semi) >= np.mean(zero) - 0.005, (name, budget, semi, zero)


@pytest.mark.assets
def test_flowers_cold_start_gains_over_the_probe(embeddings_dir: Path) -> None:
    emb, y, _ = load_classes(embeddings_dir / "flowers102-test-clip-vitb32.npz", classes=40)
    rng = np.random.default_rng(0)
    labeled = np.concatenate([rng.choice(np.flatnonzero(y == c), 2, replace=False) for c in range(40)])
    probe = fit_classifier(emb[labeled], y[labeled], num_classes=40, text_head=None, rng=np.random.default_rng(0),
                           center=emb.mean(axis=0))
    rest = np.setdiff1d(np.arange(y.size), labeled)
    acc_probe = float((np.argmax(_probs(probe, emb[rest]), axis=1) == y[rest]).mean())
    assert _unlabeled_accuracy(emb, y, None, labeled, 0) > acc_probe + 0.05


def test_class_means_logits_equal_the_centred_cosines() -> None:
    emb, _ = _clusters(k=3, per=10)
    rng = np.random.default_rng(5)
    means = estimate(emb[:6], np.array([0, 0, 1, 1, 2, 2]), emb[6:], np.full((24, 3), 1 / 3), num_classes=3,
                     center=emb.mean(axis=0) + 0.01 * rng.normal(size=emb.shape[1]).astype(np.float32),
                     scale=20.0, pool_weight=0.5)
    x = emb - means.center
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert np.allclose(means.logits(emb), 20.0 * x @ means.means.T, atol=1e-4)


def test_within_whitening_shrinks_the_spread_not_the_separation() -> None:
    """Two classes apart along e0, each spread as widely along e1: whitening by the pool's total
    covariance would shrink both alike (few classes: their separation is a main variance); the
    within-class scatter, with the EM's pseudo-labels from 2 labels per class, shrinks e1 far more."""
    rng = np.random.default_rng(0)
    d, per = 16, 200
    y = np.repeat([0, 1], per)
    x = np.zeros((y.size, d), dtype=np.float32)
    x[:, 0] = np.where(y == 0, -1.0, 1.0)
    x[:, 1] = rng.normal(size=y.size)
    x[:, 2:] = 0.1 * rng.normal(size=(y.size, d - 2))
    emb = unit(x + 5.0 * unit(rng.normal(size=(1, d))))  # a common offset, as CLIP's modality gap
    labeled = np.array([0, 1, per, per + 1])
    white = within_whitening(emb[labeled], y[labeled], emb, np.full((y.size, 2), 0.5), num_classes=2,
                             center=emb.mean(axis=0), scale=20.0)
    xc = centred_unit(emb, emb.mean(axis=0))
    separation = unit(xc[y == 1].mean(axis=0, keepdims=True) - xc[y == 0].mean(axis=0, keepdims=True))
    spread = unit(np.linalg.svd(xc[y == 0] - xc[y == 0].mean(axis=0), full_matrices=False)[2][:1])
    kept, shrunk = np.linalg.norm(white.project(separation)), np.linalg.norm(white.project(spread))
    assert kept > 0.7 and shrunk < 0.4, (kept, shrunk)


def test_a_pool_sample_thin_per_class_gives_the_probe_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool *sample* of fewer than MIN_POOL_PER_CLASS images per class: no class means are tried;
    a whole pool that small is used (late in a project the labels carry the means)."""
    import core.labeling.semi as semi_module

    emb, y = _clusters(k=8, per=10)
    labeled = np.arange(0, 80, 5)  # 2 per class
    rows = np.concatenate([labeled, np.setdiff1d(np.arange(80), labeled)[:30]])  # 30 < 5 x 8 unlabeled
    labels = np.full(rows.size, -1)
    labels[: labeled.size] = y[labeled]
    whole = fit_semi(emb[rows], labels, num_classes=8, text_head=None, rng=np.random.default_rng(0),
                     center=emb.mean(axis=0))
    assert whole.means is not None
    labels = np.full(y.size, -1)
    labels[labeled] = y[labeled]  # 64 unlabeled, a sample of 20 drawn from them
    monkeypatch.setattr(semi_module, "POOL_SAMPLE", 20)
    sampled = fit_semi(emb, labels, num_classes=8, text_head=None, rng=np.random.default_rng(0))
    assert sampled.means is None


@pytest.mark.assets
@pytest.mark.parametrize(("name", "classes"), [("flowers102-test", 40), ("pets25-val", None)])
def test_whitened_class_means_beat_plain_ones_in_a_cold_start(embeddings_dir: Path, name: str,
                                                             classes: int | None) -> None:
    """Two labels per class, no text head: the EM in the within-class-whitened space classifies the
    pool better than in the centred space (Flowers 40 classes, Pets 25: few classes, where whitening
    by the total covariance lost on one seed)."""
    emb, y, _ = load_classes(embeddings_dir / f"{name}-clip-vitb32.npz", classes=classes)
    k, mu = int(y.max()) + 1, emb.mean(axis=0)
    gains = []
    for seed in range(2):
        rng = np.random.default_rng(seed)
        labeled = np.concatenate([rng.choice(np.flatnonzero(y == c), 2, replace=False) for c in range(k)])
        pool = np.setdiff1d(np.arange(y.size), labeled)
        base = np.full((pool.size, k), 1.0 / k)
        white = within_whitening(emb[labeled], y[labeled], emb[pool], base, num_classes=k, center=mu, scale=20.0)
        right = []
        for whiten in (None, white):
            means = estimate(emb[labeled], y[labeled], emb[pool], base, num_classes=k, center=mu, scale=20.0,
                             pool_weight=1.0, whiten=whiten)
            right.append(float((np.argmax(means.logits(emb[pool]), axis=1) == y[pool]).mean()))
        gains.append(right[1] - right[0])
    assert min(gains) > 0.0 and np.mean(gains) > 0.01, gains


def test_fold_weights_give_the_expected_accuracy_and_none_is_the_plain_test() -> None:
    right = np.array([True] * 2 + [False] * 8)
    weight = fold_weights(right, 0.7)
    assert np.isclose(right @ weight / weight.sum(), 0.7)
    assert np.array_equal(fold_weights(right, None), np.ones(10))
    probe = np.array([True] * 10)
    # unweighted: 8 wins, 0 losses > sqrt(8); weighted to 70% zero-shot accuracy the same items still win
    assert clearly_better(probe, right, np.ones(10)) and clearly_better(probe, right, weight)
    breaks = np.array([False] * 2 + [True] * 3 + [False] * 5)  # fixes 3 errors, breaks the 2 right ones
    assert not clearly_better(breaks, right, weight)
    # fixes 6 of the 8 errors but breaks 1 of the 2 right ones: a clear win on an error-rich label set,
    # a loss on a collection where zero-shot is right 70% of the time
    trade = np.array([True, False] + [True] * 6 + [False] * 2)
    assert clearly_better(trade, right, np.ones(10)) and not clearly_better(trade, right, weight)


def _state(emb: np.ndarray, k: int, head: np.ndarray | None) -> object:
    from core.usecases.labeling.queue import ProjectState

    n = emb.shape[0]
    return ProjectState(project_id=1, model_id="m", label_ids=list(range(100, 100 + k)),
                        image_ids=np.arange(1, n + 1), embeddings=emb, head=head, logit_scale=100.0,
                        labels=np.full(n, -1), unembedded=[], labeled_unembedded=set(), skipped={})


def test_the_queue_runs_auto_typical_first_then_error_seeking_on_the_semi_learner() -> None:
    emb, y = _clusters(k=4, per=30)
    state = _state(emb, 4, None)
    state.refit()  # type: ignore[attr-defined]
    assert state.strategy == "auto"  # type: ignore[attr-defined]
    assert {r.strategy for r in state.queue} == {"typical_first"}  # type: ignore[attr-defined]
    for row in range(0, 120, 30):  # one label in each class: typical-first hands over
        for extra in range(2):
            state.set_label(row + extra + 1, 100 + int(y[row]))  # type: ignore[attr-defined]
    state.refit()  # type: ignore[attr-defined]
    assert {r.strategy for r in state.queue} == {"error_seeking"}  # type: ignore[attr-defined]
    assert state.classifier.version.endswith("-class-means")  # type: ignore[attr-defined]
    assert state.context is not None and state.context.labels.size == 8  # type: ignore[attr-defined]
