"""Speed of picking the next batch: each strategy's `select` on synthetic embeddings.

Usage: .venv/bin/python bench/strategies_speed.py [--sizes 10000,100000] [--n 10] [--repeats 3]
Clustered, L2-normalised embeddings (D=512) and their softmax probabilities, as in bench/adapt_speed.py.
cold_start clusters a sample of at most COLD_START_SAMPLE items, so its time levels off past that size.
typical_first and error_seeking get a context of 200 labeled images (with its image-space view; the
view's estimation itself is timed in bench/adapt_speed.py); typical_first clusters with them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.adapt_speed import best_of, make_data  # noqa: E402
from core.labeling.context import labeled_context  # noqa: E402
from core.labeling.strategies import select  # noqa: E402

STRATEGIES = ("cold_start", "typical_first", "error_seeking", "margin_diverse", "margin", "random")


def bench_size(*, n: int, k: int, batch: int, repeats: int) -> list[tuple[float, float]]:
    """(ms wall, ms CPU) per strategy, best of `repeats`, on N = n items and K = k classes."""
    emb, _, head = make_data(n=n, k=k, rng=np.random.default_rng(0))
    logits = 100.0 * (emb @ head.T)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.full(n, -1)
    labeled = np.random.default_rng(1).choice(n, 200, replace=False)
    labels[labeled] = np.argmax(probs[labeled], axis=1)
    context = labeled_context(emb, labels, probs, head=head, logit_scale=100.0, center=emb.mean(axis=0),
                              rng=np.random.default_rng(2))
    cells = []
    for name in STRATEGIES:
        wall, cpu, _ = best_of(repeats, lambda name=name: select(name, probs, emb, n=batch,  # type: ignore[misc]
                                                                 rng=np.random.default_rng(0), context=context))
        cells.append((1e3 * wall, 1e3 * cpu))
    return cells


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated N")
    parser.add_argument("--n", type=int, default=10, help="batch size asked for")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"batch={args.n} K={args.classes} D=512 best of {args.repeats}; ms wall (ms CPU)")
    print(f"{'N':>9} " + " ".join(f"{name:>18}" for name in STRATEGIES))
    for n in (int(v) for v in args.sizes.split(",")):
        cells = bench_size(n=n, k=args.classes, batch=args.n, repeats=args.repeats)
        print(f"{n:>9} " + " ".join(f"{w:>9.1f} ({c:>6.1f})" for w, c in cells), flush=True)


if __name__ == "__main__":
    main()
