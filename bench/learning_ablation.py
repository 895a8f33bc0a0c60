"""What the semi-supervised step adds: `clipmark simulate`'s loop with each learner in turn.

Usage: .venv/bin/python bench/learning_ablation.py --embeddings FILE.npz --out DIR --budget 200 --step 5
           [--seeds 3] [--strategies random,auto] [--learners probe,semi]

Learners: `probe` = the text-anchored probe on the human labels only, with unweighted folds (the
adaptation before issue 13: core.labeling.adapt.fit_classifier); `semi` = core.labeling.semi.fit_semi
(what the app and `clipmark simulate` use). Each learner's curve.csv / curve.png / summary.json go to
DIR/<learner>/; a table of the figures is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core.labeling.simulate as simulate  # noqa: E402
from core.labeling.adapt import Classifier, fit_classifier  # noqa: E402
from core.labeling.semi import fit_semi  # noqa: E402


def probe_only(embeddings: np.ndarray, labels: np.ndarray, **options: object) -> Classifier:
    labeled = labels >= 0
    return fit_classifier(embeddings[labeled], labels[labeled], **options)  # type: ignore[arg-type]


LEARNERS = {"probe": probe_only, "semi": fit_semi}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embeddings", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget", type=int, required=True)
    parser.add_argument("--step", type=int, required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--strategies", default="random,auto")
    parser.add_argument("--learners", default="probe,semi")
    args = parser.parse_args(argv)
    data = simulate.load_npz(args.embeddings)
    strategies = args.strategies.split(",")
    print(f"{'learner':<7} {'strategy':<16} {'halve':>6} {'90%':>5} {'95%':>5} {'99%':>5} {'AUC':>6} {'final':>6}")
    for learner in args.learners.split(","):
        simulate.fit_semi = LEARNERS[learner]  # type: ignore[assignment]
        summary = simulate.run_simulation(data, strategies=strategies, budget=args.budget, step=args.step,
                                          seeds=args.seeds, out_dir=Path(args.out) / learner, progress=False)
        for name, entry in summary["strategies"].items():  # type: ignore[attr-defined]
            reach = entry["labels_to_reach"]
            halve = entry["labels_to_halve_zero_shot_errors"]
            print(f"{learner:<7} {name:<16} {halve!s:>6} {reach['90%']!s:>5} {reach['95%']!s:>5} "
                  f"{reach['99%']!s:>5} {entry['auc_acc_all']:>6.3f} {entry['final_acc_all']:>6.3f}", flush=True)
    simulate.fit_semi = fit_semi  # type: ignore[assignment]


if __name__ == "__main__":
    main()
