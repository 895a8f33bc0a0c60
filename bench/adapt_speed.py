"""Speed of learning from corrections: fit, rescore and next-batch selection on synthetic data.

Usage: .venv/bin/python bench/adapt_speed.py [--quick] [--labels 200] [--repeats 3] [--sizes 10000,100000]
Synthetic clustered, L2-normalised embeddings (D=512) and a text head near the cluster centres.

The first table is the foreground path (the probe's fit + rescore); the second the semi-supervised
step the background refit adds (core/labeling/semi.py: fit_semi with the head, and cold, where the
class-means EM always runs; the strategies' context with its image-space view; `auto`'s pick).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.labeling.adapt import fit_classifier  # noqa: E402
from core.labeling.context import labeled_context  # noqa: E402
from core.labeling.semi import fit_semi  # noqa: E402
from core.labeling.strategies import select  # noqa: E402

DIM = 512
T = TypeVar("T")


def make_data(*, n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered unit vectors (float32, built in chunks to keep one N x D copy), labels, text head."""
    groups = rng.standard_normal((5, DIM)).astype(np.float32)  # superclasses make classes confusable
    centres = groups[np.arange(k) % 5] + 0.35 * rng.standard_normal((k, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    common = rng.standard_normal(DIM).astype(np.float32)
    common /= np.linalg.norm(common)
    labels = rng.integers(0, k, size=n)
    emb = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        part = slice(start, min(n, start + 100_000))
        noise = rng.standard_normal((part.stop - part.start, DIM), dtype=np.float32) * 0.03
        emb[part] = 0.8 * common + 0.5 * centres[labels[part]] + noise
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    head = centres + 0.3 * rng.standard_normal((k, DIM)).astype(np.float32) / np.sqrt(DIM)
    head /= np.linalg.norm(head, axis=1, keepdims=True)
    return emb, labels, head


def best_of(repeats: int, fn: Callable[[], T]) -> tuple[float, float, T]:
    """Smallest wall time and smallest CPU time (this process, all threads) of `repeats` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def bench_one(*, n: int, k: int, labels: int, repeats: int, rng: np.random.Generator) -> dict[str, object]:
    emb, y, head = make_data(n=n, k=k, rng=rng)
    labeled = rng.choice(n, size=labels, replace=False)
    center = emb.mean(axis=0)
    fit_w, fit_c, clf = best_of(repeats, lambda: fit_classifier(
        emb[labeled], y[labeled], num_classes=k, text_head=head, rng=np.random.default_rng(0), center=center))
    score_w, score_c, probs = best_of(repeats, lambda: clf.predict_proba(emb))
    zero_shot = clf.zero_shot_logits(emb)
    cached_w, cached_c, _ = best_of(repeats, lambda: clf.predict_proba(emb, zero_shot_logits=zero_shot))
    select_w, select_c, _ = best_of(repeats, lambda: select("margin_diverse", probs, emb, n=10,
                                                            rng=np.random.default_rng(0)))
    sample = slice(0, 20_000)
    zs_acc = float((np.argmax(emb[sample] @ head.T, axis=1) == y[sample]).mean())
    acc = float((np.argmax(probs[sample], axis=1) == y[sample]).mean())
    return {"wall": (fit_w, score_w, cached_w, fit_w + cached_w, select_w),
            "cpu": (fit_c, score_c, cached_c, fit_c + cached_c, select_c),
            "model": f"{clf.version} (acc {acc:.3f}, zero-shot {zs_acc:.3f})",
            "semi": bench_semi(emb, y, head, labeled, probs, repeats=repeats)}


def bench_semi(emb: np.ndarray, y: np.ndarray, head: np.ndarray, labeled: np.ndarray, probs: np.ndarray, *,
               repeats: int) -> dict[str, object]:
    """The background refit's extra work: fit_semi (head / cold), the context, auto's selection."""
    labels = np.full(y.size, -1)
    labels[labeled] = y[labeled]
    k, center = head.shape[0], emb.mean(axis=0)
    head_w, head_c, semi = best_of(repeats, lambda: fit_semi(emb, labels, num_classes=k, text_head=head,
                                                             rng=np.random.default_rng(0), center=center))
    cold_w, cold_c, cold = best_of(repeats, lambda: fit_semi(emb, labels, num_classes=k, text_head=None,
                                                             rng=np.random.default_rng(0), center=center))
    cold_score_w, cold_score_c, _ = best_of(repeats, lambda: cold.predict_proba(emb))
    ctx_w, ctx_c, context = best_of(repeats, lambda: labeled_context(
        emb, labels, probs, head=head, logit_scale=100.0, center=center, rng=np.random.default_rng(0)))
    candidates = np.argsort(-probs.max(axis=1))[-4096:]  # the queue's prefilter: the 4096 least sure
    auto_w, auto_c, _ = best_of(repeats, lambda: select("auto", probs[candidates], emb[candidates], n=64,
                                                        rng=np.random.default_rng(0), context=context))
    return {"wall": (head_w, cold_w, cold_score_w, ctx_w, auto_w), "cpu": (head_c, cold_c, cold_score_c, ctx_c, auto_c),
            "model": f"{semi.version} / cold {cold.version}"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip N = 1,000,000")
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", help="comma-separated N (default 10k, 100k, 1M; --quick: 10k, 100k)")
    args = parser.parse_args(argv)
    sizes: tuple[int, ...] = (10_000, 100_000) if args.quick else (10_000, 100_000, 1_000_000)
    if args.sizes:
        sizes = tuple(int(v) for v in args.sizes.split(","))
    rng = np.random.default_rng(0)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"labels={args.labels} D={DIM} best of {args.repeats}; ms wall (ms CPU); OPENBLAS_NUM_THREADS={threads}")
    print("rescore*: with the zero-shot logits cached (they never change); total = fit + rescore*")
    print(f"{'N':>9} {'K':>4} {'fit':>16} {'rescore':>16} {'rescore*':>16} {'total':>16} {'select':>16}  model")
    semi_rows = []
    for n in sizes:
        for k in (10, 100):
            r = bench_one(n=n, k=k, labels=args.labels, repeats=args.repeats, rng=rng)
            print(f"{n:>9} {k:>4} {_cells(r)}  {r['model']}", flush=True)
            semi = r["semi"]
            assert isinstance(semi, dict)
            semi_rows.append(f"{n:>9} {k:>4} {_cells(semi)}  {semi['model']}")
    print("\nbackground refit, semi-supervised step (core/labeling/semi.py, context.py; auto on the 4096 least sure)")
    print(f"{'N':>9} {'K':>4} {'fit_semi head':>16} {'fit_semi cold':>16} {'rescore cold':>16} {'context':>16} "
          f"{'auto select':>16}  model")
    print("\n".join(semi_rows))


def _cells(r: dict[str, object]) -> str:
    return " ".join(f"{1e3 * w:>7.1f} ({1e3 * c:>6.1f})"
                    for w, c in zip(r["wall"], r["cpu"], strict=True))  # type: ignore[call-overload]


if __name__ == "__main__":
    main()
