"""The simulation benchmark: an oracle labels what each strategy asks for; the curve shows how fast
the pseudo-labels get right.

Writes `curve.csv` (columns `CURVE_COLUMNS`; missing values - `acc_unlabeled` once every image is
labeled, `zero_shot_acc` when there is no text head - are empty cells), `curve.png` and
`summary.json` into the output folder.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from core.errors import InvalidInput
from core.labeling.adapt import Classifier, fit_classifier
from core.labeling.context import labeled_context
from core.labeling.semi import fit_semi
from core.labeling.sim_audits import EST_COLUMNS, AuditTrack, audit_summary
from core.labeling.strategies import STRATEGIES, select

CURVE_COLUMNS = ("strategy", "seed", "labels_used", "acc_unlabeled", *EST_COLUMNS, "acc_all", "zero_shot_acc",
                 "update_seconds")
MARKS = (0.90, 0.95, 0.99)
REFERENCE_FOLDS = 3
REQUIRED_KEYS = ("image_embeddings", "labels", "class_names")


@dataclass(frozen=True)
class SimData:
    """Embeddings with their true labels; `text_embeddings` (K x D) is None for a cold start."""

    image_embeddings: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    text_embeddings: np.ndarray | None


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def load_npz(path: Path | str) -> SimData:
    """Read `image_embeddings`, `labels`, `class_names` and optional `text_embeddings`."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: file not found")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: not a readable .npz file ({exc})") from exc
    with archive:
        missing = [key for key in REQUIRED_KEYS if key not in archive.files]
        if missing:
            raise InvalidInput(f"{path}: missing key(s) {', '.join(missing)}; found {', '.join(archive.files)}")
        text = archive["text_embeddings"] if "text_embeddings" in archive.files else None
        data = SimData(image_embeddings=_normalised(archive["image_embeddings"]),
                       labels=np.asarray(archive["labels"]).astype(np.int64),
                       class_names=[str(name) for name in archive["class_names"]],
                       text_embeddings=None if text is None else _normalised(text))
    _validate_data(data, source=str(path))
    return data


def _validate_data(data: SimData, *, source: str) -> None:
    emb, k = data.image_embeddings, len(data.class_names)
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise InvalidInput(f"{source}: image_embeddings must be a non-empty N x D array, got {emb.shape}")
    if data.labels.shape != (emb.shape[0],):
        raise InvalidInput(f"{source}: labels must have shape ({emb.shape[0]},), got {data.labels.shape}")
    if k == 0 or data.labels.min() < 0 or data.labels.max() >= k:
        raise InvalidInput(f"{source}: labels must lie in 0..{k - 1} (one per class_names entry)")
    if data.text_embeddings is not None and data.text_embeddings.shape != (k, emb.shape[1]):
        raise InvalidInput(f"{source}: text_embeddings must have shape ({k}, {emb.shape[1]}), "
                           f"got {data.text_embeddings.shape}")
    if not np.all(np.isfinite(emb)):
        raise InvalidInput(f"{source}: image_embeddings must be finite")


def _validate_settings(data: SimData, strategies: list[str], budget: int, step: int, seeds: int) -> None:
    unknown = [name for name in strategies if name not in STRATEGIES]
    if not strategies or unknown:
        raise InvalidInput(f"strategies: unknown {unknown or 'none given'}; valid: {', '.join(sorted(STRATEGIES))}")
    if not 0 <= budget <= data.labels.size:
        raise InvalidInput(f"budget: must be in 0..{data.labels.size} (the number of images), got {budget}")
    if step < 1:
        raise InvalidInput(f"step: must be >= 1, got {step}")
    if seeds < 1:
        raise InvalidInput(f"seeds: must be >= 1, got {seeds}")


def label_grid(*, budget: int, step: int) -> list[int]:
    """0, S, 2S, ... and the budget itself as the last point."""
    grid = list(range(0, budget + 1, step))
    return grid if grid[-1] == budget else [*grid, budget]


def _accuracies(probs: np.ndarray, data: SimData, labeled: np.ndarray) -> tuple[float, float]:
    correct = np.argmax(probs, axis=1) == data.labels
    unlabeled = ~labeled
    acc_unlabeled = float(correct[unlabeled].mean()) if unlabeled.any() else float("nan")
    return acc_unlabeled, float((correct | labeled).mean())


def _fit(data: SimData, labeled: np.ndarray, *, logit_scale: float, center: np.ndarray,
         rng: np.random.Generator) -> Classifier:
    return fit_classifier(data.image_embeddings[labeled], data.labels[labeled], num_classes=len(data.class_names),
                          text_head=data.text_embeddings, logit_scale=logit_scale, rng=rng, center=center)


def _run_one(data: SimData, *, strategy: str, seed: int, grid: list[int], logit_scale: float,
             zero_shot_acc: float, tick: Callable[[], object], audit: float = 0.0) -> list[dict[str, object]]:
    """One strategy, one seed: label in batches along the grid (a share `audit` of each batch drawn
    uniformly, as blind audits), refit and rescore after each."""
    rng = np.random.default_rng(seed)
    track = AuditTrack(share=audit, seed=seed, size=data.labels.size)
    center = data.image_embeddings.mean(axis=0)
    zero_shot: np.ndarray | None = None
    labeled = np.zeros(data.labels.size, dtype=bool)
    rows: list[dict[str, object]] = []
    probs: np.ndarray | None = None
    for used in grid:
        if probs is not None and used > labeled.sum():
            track.draw(labeled, need=used - int(labeled.sum()))
            candidates = np.flatnonzero(~labeled)
            learned = np.where(labeled & ~track.audited, data.labels, -1)  # audits steer nothing, as in the app
            context = labeled_context(data.image_embeddings, learned, probs, head=data.text_embeddings,
                                      logit_scale=logit_scale, center=center, rng=rng)
            chosen = select(strategy, probs[candidates], data.image_embeddings[candidates],
                            n=used - int(labeled.sum()), rng=rng, context=context)
            labeled[candidates[chosen.indices]] = True
        start = time.perf_counter()
        clf = fit_semi(data.image_embeddings, np.where(labeled & ~track.audited, data.labels, -1),
                       num_classes=len(data.class_names),
                       text_head=data.text_embeddings, logit_scale=logit_scale, rng=rng, center=center)
        if zero_shot is None:  # cached, as a service would: it never changes
            zero_shot = clf.zero_shot_logits(data.image_embeddings)
        probs = clf.predict_proba(data.image_embeddings, zero_shot_logits=zero_shot)
        seconds = time.perf_counter() - start
        acc_unlabeled, acc_all = _accuracies(probs, data, labeled)
        estimate = track.estimate(data.labels, labeled, probs)
        rows.append({"strategy": strategy, "seed": seed, "labels_used": int(labeled.sum()),
                     "acc_unlabeled": acc_unlabeled, **estimate, "acc_all": acc_all, "zero_shot_acc": zero_shot_acc,
                     "update_seconds": seconds})
        tick()
    return rows


def zero_shot_accuracy(data: SimData, *, logit_scale: float = 100.0) -> float:
    """The text head's accuracy on all images; NaN when there is no head."""
    if data.text_embeddings is None:
        return float("nan")
    logits = logit_scale * (data.image_embeddings @ data.text_embeddings.T)
    return float((np.argmax(logits, axis=1) == data.labels).mean())


def reference_probe_accuracy(data: SimData, *, logit_scale: float = 100.0, seed: int = 0) -> float:
    """Held-out accuracy of the same probe trained with every label (REFERENCE_FOLDS-fold CV)."""
    rng = np.random.default_rng(seed)
    fold = rng.permutation(data.labels.size) % REFERENCE_FOLDS
    center = data.image_embeddings.mean(axis=0)
    correct = 0
    for f in range(REFERENCE_FOLDS):
        clf = _fit(data, fold != f, logit_scale=logit_scale, center=center, rng=rng)
        pred = np.argmax(clf.predict_proba(data.image_embeddings[fold == f]), axis=1)
        correct += int((pred == data.labels[fold == f]).sum())
    return correct / data.labels.size


def first_reaching(labels_used: np.ndarray, accuracy: np.ndarray, target: float) -> int | None:
    """The fewest labels at which `accuracy` reaches `target`; None when it never does."""
    hits = np.flatnonzero(accuracy >= target - 1e-12)
    return int(labels_used[hits[0]]) if hits.size else None


def labels_to_halve_errors(labels_used: np.ndarray, acc_all: np.ndarray, zero_shot_acc: float) -> int | None:
    """Labels after which half of the zero-shot errors are gone (acc_all); None without a head."""
    if not np.isfinite(zero_shot_acc):
        return None
    return first_reaching(labels_used, acc_all, 1.0 - 0.5 * (1.0 - zero_shot_acc))


def _mean_curve(rows: list[dict[str, object]], strategy: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    mine = [r for r in rows if r["strategy"] == strategy]
    grid = np.array(sorted({int(r["labels_used"]) for r in mine}))  # type: ignore[call-overload]
    values = np.array([_nanmean([float(r[key]) for r in mine if r["labels_used"] == g])  # type: ignore[arg-type]
                       for g in grid])
    return grid, values


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def summarise(rows: list[dict[str, object]], *, strategies: list[str], zero_shot_acc: float,
              reference_acc: float, budget: int) -> dict[str, object]:
    """Per strategy: labels to reach 90/95/99% of the reference, to halve zero-shot errors, AUC."""
    per: dict[str, dict[str, object]] = {}
    for name in strategies:
        grid, acc_all = _mean_curve(rows, name, "acc_all")
        _, acc_unlabeled = _mean_curve(rows, name, "acc_unlabeled")
        _, seconds = _mean_curve(rows, name, "update_seconds")
        auc = float(np.trapezoid(acc_all, grid) / budget) if budget > 0 else float(acc_all[0])
        per[name] = {
            "labels_to_reach": {f"{round(100 * m)}%": first_reaching(grid, acc_all, m * reference_acc) for m in MARKS},
            "labels_to_halve_zero_shot_errors": labels_to_halve_errors(grid, acc_all, zero_shot_acc),
            "auc_acc_all": auc,
            "final_acc_all": float(acc_all[-1]),
            "final_acc_unlabeled": None if np.isnan(acc_unlabeled[-1]) else float(acc_unlabeled[-1]),
            "mean_update_seconds": float(np.mean(seconds[1:])) if seconds.size > 1 else float(seconds[0]),
        }
    _add_ratio_to_random(per)
    return {"zero_shot_acc": None if np.isnan(zero_shot_acc) else zero_shot_acc,
            "reference_probe_acc": reference_acc,
            "reference_probe": f"{REFERENCE_FOLDS}-fold held-out accuracy of the adapted probe trained on all labels",
            "strategies": per}


def _add_ratio_to_random(per: dict[str, dict[str, object]]) -> None:
    """labels_to_halve / random's labels_to_halve (the acceptance check wants <= 0.5); null when
    either never halved the errors or random was not run."""
    base = per.get("random", {}).get("labels_to_halve_zero_shot_errors")
    for entry in per.values():
        mine = entry["labels_to_halve_zero_shot_errors"]
        ratio = mine / base if isinstance(mine, int) and isinstance(base, int) and base > 0 else None
        entry["halve_ratio_to_random"] = ratio


def _cell(value: object) -> object:
    return "" if isinstance(value, float) and np.isnan(value) else value


def write_curve_csv(rows: list[dict[str, object]], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CURVE_COLUMNS))
        writer.writeheader()
        writer.writerows({key: _cell(row[key]) for key in CURVE_COLUMNS} for row in rows)


def plot_curve(rows: list[dict[str, object]], *, strategies: list[str], zero_shot_acc: float, path: Path) -> None:
    """acc_all against labels used: seed mean with a min-max band, zero-shot as a dashed line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name in strategies:
        mine = [r for r in rows if r["strategy"] == name]
        grid = np.array(sorted({int(r["labels_used"]) for r in mine}))  # type: ignore[call-overload]
        runs = np.array([[float(r["acc_all"]) for r in mine if r["labels_used"] == g] for g in grid])  # type: ignore[arg-type]
        ax.plot(grid, runs.mean(axis=1), label=name)
        ax.fill_between(grid, runs.min(axis=1), runs.max(axis=1), alpha=0.2)
    if np.isfinite(zero_shot_acc):
        ax.axhline(zero_shot_acc, color="grey", linestyle="--", label="zero-shot")
    ax.set_xlabel("labels used")
    ax.set_ylabel("accuracy on all images (acc_all)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def run_simulation(data: SimData, *, strategies: list[str], budget: int, step: int, seeds: int, out_dir: Path,
                   logit_scale: float = 100.0, progress: bool = True, audit: float = 0.0) -> dict[str, object]:
    """Run every strategy for every seed, write curve.csv, curve.png, summary.json; return the summary.
    `audit`: the share of labels drawn as blind random audits (their estimate goes next to the truth)."""
    if not 0.0 <= audit <= 1.0:
        raise InvalidInput(f"audit: a share between 0 and 1, got {audit}")
    _validate_data(data, source="data")
    _validate_settings(data, strategies, budget, step, seeds)
    grid = label_grid(budget=budget, step=step)
    zs_acc = zero_shot_accuracy(data, logit_scale=logit_scale)
    bar = _progress_bar(total=len(strategies) * seeds * len(grid), enabled=progress)
    rows: list[dict[str, object]] = []
    try:
        for name in strategies:
            for seed in range(seeds):
                rows += _run_one(data, strategy=name, seed=seed, grid=grid, logit_scale=logit_scale,
                                 zero_shot_acc=zs_acc, tick=lambda: bar.update(1), audit=audit)
    finally:
        bar.close()
    reference = reference_probe_accuracy(data, logit_scale=logit_scale)
    summary = summarise(rows, strategies=strategies, zero_shot_acc=zs_acc, reference_acc=reference, budget=budget)
    for name, entry in summary["strategies"].items():  # type: ignore[attr-defined]
        entry.update(audit_summary(rows, name))
    summary["settings"] = {"budget": budget, "step": step, "seeds": seeds, "logit_scale": logit_scale, "audit": audit,
                           "num_images": int(data.labels.size), "num_classes": len(data.class_names),
                           "has_text_head": data.text_embeddings is not None}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_curve_csv(rows, out_dir / "curve.csv")
    plot_curve(rows, strategies=strategies, zero_shot_acc=zs_acc, path=out_dir / "curve.png")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


class _Bar(Protocol):
    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


class _NoBar:
    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


def _progress_bar(*, total: int, enabled: bool) -> _Bar:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="simulate", unit="step")
