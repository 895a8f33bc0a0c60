"""Running an exported model on files: `clipmark classify` (a CSV of path, label, confidence, top-k)
and the probabilities of a project's images when an exported model is its classifier. Only numpy,
PIL and onnxruntime run here (core.models.onnx_runtime): no torch."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.errors import InvalidInput, ModelLoadError
from core.export.tables import csv_safe
from core.io.images import IMAGE_EXTENSIONS
from core.models.onnx_runtime import OnnxClassifier
from core.usecases.training.results import ClassifyReport, Prediction

MAX_TOP_K = 20


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """(image files: the given files, and the images under given folders, sorted; errors for missing paths)."""
    files, errors = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS))
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return files, errors


def classify_files(model: str | Path, inputs: Sequence[str | Path], *, out: str | Path | None, top_k: int,
                   progress: bool, max_pixels: int) -> ClassifyReport:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
        raise InvalidInput(f"--top-k: a whole number from 1 to {MAX_TOP_K}, got {top_k!r}")
    if not inputs:
        raise InvalidInput("IMAGE_OR_FOLDER: give at least one image file or folder")
    runner = OnnxClassifier.load(model)
    if out is not None:
        _check_out(Path(out))  # before the work, not after it
    files, errors = expand_inputs(inputs)
    probs, kept = _run(runner, files, progress=progress, max_pixels=max_pixels, errors=errors)
    names = runner.class_names
    k = min(top_k, len(names))
    predictions = []
    for row, position in zip(probs, kept, strict=True):
        order = np.argsort(-row, kind="stable")[:k]
        predictions.append(Prediction(path=str(files[position]), label=names[order[0]],
                                      confidence=float(row[order[0]]),
                                      top_k=tuple((names[i], float(row[i])) for i in order)))
    if out is not None:
        _write_csv(Path(out), predictions, k)
    return ClassifyReport(model=str(model), predictions=tuple(predictions), errors=tuple(errors),
                          out=None if out is None else str(out))


def _run(runner: OnnxClassifier, files: list[Path], *, progress: bool, max_pixels: int,
         errors: list[str]) -> tuple[np.ndarray, list[int]]:
    from tqdm.auto import tqdm

    with tqdm(total=len(files), unit="img", desc="classify", disable=not progress) as bar:
        def advance(done: int) -> None:
            bar.update(done - bar.n)

        probs, kept, failed = runner.predict_files(files, max_pixels=max_pixels, on_progress=advance)
    errors.extend(failed)
    return probs, kept


def _check_out(path: Path) -> None:
    if path.is_dir():
        raise InvalidInput(f"--out: {path} is a folder; give the name of the CSV file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"--out: cannot create {path.parent}: {exc.strerror or exc}") from exc
    if not os.access(path.parent, os.W_OK):
        raise InvalidInput(f"--out: {path.parent} is not writable")


def _write_csv(path: Path, predictions: list[Prediction], k: int) -> None:
    partial = path.with_name(path.name + ".part")
    try:
        _write_rows(partial, predictions, k)
    except OSError as exc:  # a full disk: say so, leave no partial file
        partial.unlink(missing_ok=True)
        raise InvalidInput(f"--out: cannot write {path}: {exc.strerror or exc}") from exc
    partial.replace(path)


def _write_rows(partial: Path, predictions: list[Prediction], k: int) -> None:
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "confidence", *[f"top{i + 1}" for i in range(k)],
                         *[f"top{i + 1}_confidence" for i in range(k)]])
        for p in predictions:  # file and class names are user text: a spreadsheet must not run them
            writer.writerow([csv_safe(p.path), csv_safe(p.label), f"{p.confidence:.6f}",
                             *[csv_safe(name) for name, _ in p.top_k],
                             *[f"{value:.6f}" for _, value in p.top_k]])


def exported_probs(folder: str | Path, class_names: list[str], images: list[tuple[int, str]], *,
                   max_pixels: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(image ids, probs in the project's class order, "exported:<name>") of the project's images."""
    runner = OnnxClassifier.load(folder)
    if sorted(runner.class_names) != sorted(class_names):
        raise ModelLoadError(f"--model: {folder} knows classes {runner.class_names}; the project has {class_names}")
    probs, kept, _ = runner.predict_files([path for _, path in images], max_pixels=max_pixels)
    order = [runner.class_names.index(name) for name in class_names]
    ids = np.array([images[p][0] for p in kept], dtype=np.int64)
    return ids, probs[:, order], f"exported:{Path(folder).resolve().name}"
