"""Scores of a model on held-out human labels: accuracy with its Wilson interval, a per-class table,
the confusion matrix and its picture (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.usecases.training.results import ClassScore, Evaluation

Z95 = 1.959964


def wilson(correct: int, n: int) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion (None without items)."""
    if n <= 0:
        return None
    p = correct / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate(truth: np.ndarray, predicted: np.ndarray, class_names: Sequence[str], *,
             picture: str | Path | None) -> Evaluation:
    """`truth` and `predicted` class indices of the held-out images."""
    k = len(class_names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    correct = int(np.trace(confusion))
    n = int(truth.size)
    png = str(confusion_picture(confusion, class_names, picture)) if picture is not None and n else None
    return Evaluation(images=n, accuracy=correct / n if n else None, interval=wilson(correct, n),
                      per_class=tuple(_class_score(confusion, i, name) for i, name in enumerate(class_names)),
                      confusion=tuple(tuple(int(v) for v in row) for row in confusion), confusion_png=png)


def _class_score(confusion: np.ndarray, i: int, name: str) -> ClassScore:
    support, predicted, hit = int(confusion[i].sum()), int(confusion[:, i].sum()), int(confusion[i, i])
    return ClassScore(name=name, support=support, correct=hit, precision=hit / predicted if predicted else None,
                      recall=hit / support if support else None)


def confusion_picture(confusion: np.ndarray, class_names: Sequence[str], path: str | Path) -> Path:
    from matplotlib.figure import Figure  # the object API: no pyplot state, safe in worker threads

    k = len(class_names)
    side = min(14.0, 2.5 + 0.45 * k)
    figure = Figure(figsize=(side, side), dpi=100)
    axes = figure.add_subplot()
    axes.imshow(confusion, cmap="Blues")
    # parse_math=False: a class named "x$^$" (or "$5 and $6") is text, not matplotlib's mathtext
    axes.set_xticks(range(k), labels=list(class_names), rotation=60, ha="right", fontsize=8, parse_math=False)
    axes.set_yticks(range(k), labels=list(class_names), fontsize=8, parse_math=False)
    axes.set_xlabel("predicted")
    axes.set_ylabel("human label (held out)")
    top = confusion.max(initial=0)
    for (row, col), value in np.ndenumerate(confusion):
        if value:
            axes.text(col, row, str(value), ha="center", va="center", fontsize=7,
                      color="white" if value > top / 2 else "black")
    axes.set_title(f"Confusion matrix ({int(confusion.sum())} held-out labels)")
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target)
    return target
