"""The comparisons behind docs/learning.md, on the shared real CLIP embeddings.

Usage:
  .venv/bin/python bench/learning_methods.py methods FILE.npz --labels 102,200,400 [--seeds 2]
  .venv/bin/python bench/learning_methods.py detectors FILE.npz --top 10,30,60
  .venv/bin/python bench/learning_methods.py coverage FILE.npz [--seeds 3]

`methods`: accuracy on the unlabeled images of each semi-supervised candidate, on random label sets
(the probe; class means with pseudo-label weight 0.3 and 1, alone and times the probe, and with
weight 1 in the within-class-whitened space fit_semi uses; label
propagation over a 10-NN graph, alone and added to the probe; fit_semi as shipped).
`detectors`: how many zero-shot errors each score puts among its top picks, before any label.
`coverage` (cold start, the text head ignored): what one label per class is worth when it covers
every class (the image nearest each true class centre, or a random one; fit_semi as shipped), and
how many classes label-free selection can cover with as many picks as classes (k-means with
1-3x as many clusters as classes, the most typical image of each cluster, biggest first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.labeling.adapt import fit_classifier, softmax  # noqa: E402
from core.labeling.classmeans import centred_unit, estimate, within_whitening  # noqa: E402
from core.labeling.context import labeled_context  # noqa: E402
from core.labeling.semi import fit_semi  # noqa: E402
from core.labeling.simulate import SimData, load_npz  # noqa: E402
from core.labeling.strategies import _kmeans, least_confidence_scores, margin_scores, select  # noqa: E402
from core.labeling.typical import _typicality  # noqa: E402


def _means_probs(data: SimData, labeled: np.ndarray, base: np.ndarray, weight: float, *,
                 whiten: bool = False) -> np.ndarray:
    k, emb, mu = len(data.class_names), data.image_embeddings, data.image_embeddings.mean(axis=0)
    seen = None if data.text_embeddings is not None else np.bincount(data.labels[labeled], minlength=k) > 0
    white = None if not whiten else within_whitening(emb[labeled], data.labels[labeled], emb[~labeled],
                                                     base[~labeled], num_classes=k, center=mu, scale=20.0,
                                                     classes=seen)
    means = estimate(emb[labeled], data.labels[labeled], emb[~labeled], base[~labeled], num_classes=k,
                     center=mu, scale=20.0, pool_weight=weight, classes=seen, whiten=white)
    return np.exp(means.log_probs(emb))


def _propagate(data: SimData, labeled: np.ndarray, *, k: int = 10, alpha: float = 0.9) -> np.ndarray:
    """Zhou et al.'s label spreading on a symmetric 10-NN graph of centred cosines (cubed weights)."""
    x = centred_unit(data.image_embeddings, data.image_embeddings.mean(axis=0))
    sim = x @ x.T
    np.fill_diagonal(sim, -1.0)
    near = np.argpartition(-sim, k, axis=1)[:, :k]
    rows = np.arange(x.shape[0])[:, None]
    graph = np.zeros_like(sim)
    graph[rows, near] = np.maximum(sim[rows, near], 0.0) ** 3
    graph += graph.T
    scale = 1.0 / np.sqrt(np.maximum(graph.sum(axis=1), 1e-9))
    graph = scale[:, None] * graph * scale[None, :]
    seed = np.zeros((x.shape[0], len(data.class_names)))
    seed[np.flatnonzero(labeled), data.labels[labeled]] = 1.0
    spread = seed.copy()
    for _ in range(20):
        spread = alpha * graph @ spread + (1 - alpha) * seed
    return spread / np.maximum(spread.sum(axis=1, keepdims=True), 1e-12)


def methods(data: SimData, *, sizes: list[int], seeds: int, propagation: bool = True) -> None:
    k, emb, y = len(data.class_names), data.image_embeddings, data.labels
    for size in sizes:
        scores: dict[str, list[float]] = {}
        for seed in range(seeds):
            labeled = np.zeros(y.size, dtype=bool)
            labeled[np.random.default_rng(seed).permutation(y.size)[:size]] = True
            probe = fit_classifier(emb[labeled], y[labeled], num_classes=k, text_head=data.text_embeddings,
                                   rng=np.random.default_rng(seed), center=emb.mean(axis=0)).predict_proba(emb)
            semi = fit_semi(emb, np.where(labeled, y, -1), num_classes=k, text_head=data.text_embeddings,
                            rng=np.random.default_rng(seed)).predict_proba(emb)
            candidates = {"probe": probe, "fit_semi": semi}
            if propagation:  # a dense N x N graph: small sets only
                spread = _propagate(data, labeled)
                candidates.update({"label propagation": spread, "probe + propagation": probe + spread})
            base = probe if data.text_embeddings is None else softmax(100.0 * emb @ data.text_embeddings.T)
            for weight in (0.3, 1.0):
                means = _means_probs(data, labeled, base, weight)
                candidates[f"class means w{weight}"] = means
                candidates[f"probe x class means w{weight}"] = probe * means
            candidates["class means w1, whitened"] = _means_probs(data, labeled, base, 1.0, whiten=True)
            for name, probs in candidates.items():
                right = np.argmax(probs, axis=1) == y
                scores.setdefault(name, []).append(float(right[~labeled].mean()))
        print(f"{size} labels: " + ", ".join(f"{name} {100 * np.mean(v):.2f}" for name, v in scores.items()),
              flush=True)


def detectors(data: SimData, *, tops: list[int]) -> None:
    if data.text_embeddings is None:
        raise SystemExit("detectors: needs a text head (zero-shot errors)")
    emb, head = data.image_embeddings, data.text_embeddings
    probs = softmax(100.0 * emb @ head.T)
    wrong = np.argmax(probs, axis=1) != data.labels
    context = labeled_context(emb, np.full(data.labels.size, -1), probs, head=head, logit_scale=100.0,
                              center=emb.mean(axis=0), rng=np.random.default_rng(0))
    assert context.view is not None
    disagree = 1.0 - np.exp(context.view.log_probs(emb)[np.arange(emb.shape[0]), np.argmax(probs, axis=1)])
    x = centred_unit(emb, emb.mean(axis=0))
    sim = x @ x.T
    np.fill_diagonal(sim, -9.0)
    near = np.argpartition(-sim, 10, axis=1)[:, :10]
    predicted = np.argmax(probs, axis=1)
    scores = {"margin": margin_scores(probs), "least confidence": least_confidence_scores(probs),
              "10-NN label disagreement": (predicted[near] != predicted[:, None]).mean(axis=1)
              + 1e-3 * margin_scores(probs),
              "view disagreement": disagree, "margin x view disagreement": margin_scores(probs) * disagree}
    print(f"zero-shot errors: {int(wrong.sum())} of {wrong.size}")
    for name, score in scores.items():
        order = np.argsort(-score)
        print(f"{name}: " + ", ".join(f"top {t} {int(wrong[order[:t]].sum())}" for t in tops))
    for name in ("error_seeking", "margin_diverse"):
        picks = [int(wrong[select(name, probs, emb, n=t, rng=np.random.default_rng(0), context=context).indices].sum())
                 for t in tops]
        print(f"{name} (as shipped): " + ", ".join(f"top {t} {p}" for t, p in zip(tops, picks, strict=True)))


def coverage(data: SimData, *, seeds: int) -> None:
    k, emb, y = len(data.class_names), data.image_embeddings, data.labels

    def accuracy(labeled: np.ndarray) -> tuple[float, float]:
        clf = fit_semi(emb, np.where(labeled, y, -1), num_classes=k, text_head=None, rng=np.random.default_rng(0))
        right = np.argmax(clf.predict_proba(emb), axis=1) == y
        return 100 * float((right | labeled).mean()), 100 * float(right[~labeled].mean())

    typical = np.zeros(y.size, dtype=bool)
    for c in range(k):
        members = np.flatnonzero(y == c)
        typical[members[np.argmax(emb[members] @ emb[members].mean(axis=0))]] = True
    drawn = []
    for seed in range(seeds):
        rng, one = np.random.default_rng(seed), np.zeros(y.size, dtype=bool)
        one[[rng.choice(np.flatnonzero(y == c)) for c in range(k)]] = True
        drawn.append(accuracy(one))
    print(f"one label per class, {k} labels (acc_all / unlabeled): nearest its class centre "
          "{:.1f} / {:.1f}; drawn at random {:.1f} / {:.1f}".format(*accuracy(typical), *np.mean(drawn, axis=0)))
    points = centred_unit(emb, emb.mean(axis=0))
    for factor in (1.0, 1.5, 2.0, 3.0):
        clusters, covered = int(round(factor * k)), []
        for seed in range(seeds):
            assign = _kmeans(points, clusters, np.random.default_rng(seed))
            sizes = np.bincount(assign, minlength=clusters)
            picks = []
            for c in np.argsort(-sizes, kind="stable")[: min(k, int((sizes > 0).sum()))]:
                members = np.flatnonzero(assign == c)
                picks.append(int(members[np.argmax(_typicality(points[members]))]))
            covered.append(np.unique(y[picks]).size)
        print(f"k-means into {clusters} clusters, {k} typical picks: {np.mean(covered):.1f} of {k} classes covered")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("methods", "detectors", "coverage"))
    parser.add_argument("embeddings")
    parser.add_argument("--labels", default="30,60")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--top", default="10,30,60")
    parser.add_argument("--no-propagation", action="store_true", help="skip label propagation (N x N memory)")
    args = parser.parse_args(argv)
    data = load_npz(args.embeddings)
    if args.what == "methods":
        methods(data, sizes=[int(v) for v in args.labels.split(",")], seeds=args.seeds,
                propagation=not args.no_propagation)
    elif args.what == "coverage":
        coverage(data, seeds=args.seeds)
    else:
        detectors(data, tops=[int(v) for v in args.top.split(",")])


if __name__ == "__main__":
    main()
