"""The two kinds of model a training run writes into its folder: the CLIP head (encoder + adapted
classifier in one ONNX graph) and a distilled timm student. Each returns the config entries and the
numbers the report and the card show."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import Conflict, InvalidInput
from core.models import student as net
from core.models.export_onnx import OPSET, export_clip_head, preprocess_config, save_arrays
from core.usecases.training.data import Snapshot, fit_on, head_arrays
from core.usecases.training.results import StudentOptions

MAX_AGREEMENT_IMAGES = 2000  # unlabeled images the student's agreement is measured on (a random sample)
CONFIDENT = 0.5          # pseudo-labels at or above this top probability become soft targets
Stop = Callable[[int, int, float, float], bool]


class Stopped(Conflict):
    """The run was asked to stop (Cancel in the web app): nothing exported, the checkpoint resumes it."""


@dataclass
class Built:
    config: dict[str, Any]
    held_probs: np.ndarray               # the model's probabilities on the held-out labeled images
    pseudo_labels: int = 0
    agreement: float | None = None
    agreement_images: int = 0
    failed: list[str] = field(default_factory=list)
    images_per_second: float | None = None
    steps: int = 0
    resumed_from: int | None = None
    weights: str = "CLIP image encoder of the project"


def build_head(data: Snapshot, train: np.ndarray, held: np.ndarray, *, clip: Any, folder: Path) -> Built:
    """model.onnx + head.safetensors of the classifier refitted on the training share."""
    classifier = fit_on(data, held)
    arrays = head_arrays(classifier, data.embeddings.shape[1])
    pre = preprocess_config(clip.preprocess)
    export_clip_head(clip.module, arrays, folder / "model.onnx", image_size=pre["image_size"])
    save_arrays(arrays, folder / "head.safetensors", metadata={"classifier_version": classifier.version})
    config = {"kind": "head", "opset": OPSET, "preprocess": pre, "classifier": classifier.report()}
    return Built(config=config, held_probs=classifier.predict_proba(data.embeddings[held]))


def teacher_targets(data: Snapshot, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities of the classifier refitted without the held-out labels for every image, positions of
    the confident unlabeled images)."""
    probs = fit_on(data, held).predict_proba(data.embeddings)
    unlabeled = np.flatnonzero(data.labels < 0)
    return probs, unlabeled[probs[unlabeled].max(axis=1) >= CONFIDENT]


def build_student(data: Snapshot, train: np.ndarray, held: np.ndarray, *, options: StudentOptions, folder: Path,
                  workdir: Path, on_step: Stop | None, max_pixels: int) -> Built:
    probs, confident = teacher_targets(data, held)
    rng = np.random.default_rng([data.project_id, 7])
    shuffled = rng.permutation(confident)
    check = shuffled[: int(round(0.2 * shuffled.size))]           # agreement is measured on these, never trained
    pseudo = np.setdiff1d(confident, check)
    unlabeled_rest = np.setdiff1d(np.flatnonzero(data.labels < 0), confident)
    positions = np.concatenate([train, pseudo])
    usable = [p for p in positions.tolist() if data.paths[p]]
    if not usable:
        raise InvalidInput(f"project '{data.project}': no image files to train on (no readable copies)")
    targets = probs[usable].copy()
    human = np.isin(usable, train)
    targets[human] = np.eye(len(data.class_names), dtype=np.float32)[data.fit_labels[np.array(usable)[human]]]
    module, weights = net.build_student(options.name, num_classes=len(data.class_names), pretrained=options.pretrained)
    settings = net.TrainSettings(epochs=options.epochs, batch_size=options.batch_size, image_size=options.image_size,
                                 num_workers=options.num_workers, max_pixels=max_pixels)
    paths = [str(data.paths[p]) for p in usable]
    log = net.train_student(module, paths, targets, settings=settings, workdir=workdir, resume=options.resume,
                            on_step=on_step)
    if log.stopped:
        raise Stopped(f"training stopped at step {log.steps + (log.resumed_from or 0)}; nothing was exported; "
                      f"the checkpoint in {workdir} resumes it (clipmark train --resume)")
    others = np.concatenate([check, unlabeled_rest])
    if others.size > MAX_AGREEMENT_IMAGES:
        others = np.sort(rng.choice(others, MAX_AGREEMENT_IMAGES, replace=False))
    held_probs, agreement, n_agree = _student_scores(net, module, data, held, others, probs, options,
                                                     max_pixels=max_pixels)
    meta = {"student": options.name, "classes": ",".join(data.class_names)}
    net.export_student(module, folder, image_size=options.image_size, metadata=meta)
    config = {"kind": "student", "student": options.name, "opset": 17,
              "preprocess": net.eval_preprocess(options.image_size),
              "epochs": options.epochs, "batch_size": options.batch_size, "confident": CONFIDENT}
    return Built(config=config, held_probs=held_probs, pseudo_labels=int(pseudo.size), agreement=agreement,
                 agreement_images=n_agree, failed=sorted({paths[p] for p in log.failed}),
                 images_per_second=log.images_per_second, steps=log.steps, resumed_from=log.resumed_from,
                 weights=weights)


def _student_scores(net: Any, module: Any, data: Snapshot, held: np.ndarray, others: np.ndarray,
                    teacher: np.ndarray, options: StudentOptions, *,
                    max_pixels: int) -> tuple[np.ndarray, float | None, int]:
    """(probs on the held-out labels, agreement with the teacher on unlabeled images not trained on, their count)."""
    def scored(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        usable = np.array([p for p in positions.tolist() if data.paths[p]], dtype=np.int64)
        probs, kept = net.predict(module, [str(data.paths[p]) for p in usable], image_size=options.image_size,
                                  max_pixels=max_pixels)
        return probs, usable[np.asarray(kept, dtype=np.int64)] if len(kept) else usable[:0]

    held_probs, held_kept = scored(held)
    full = np.full((held.size, len(data.class_names)), 1.0 / len(data.class_names), np.float32)
    full[np.searchsorted(held, held_kept)] = held_probs if held_kept.size else full[:0]
    other_probs, other_kept = scored(others)
    if not other_kept.size:
        return full, None, 0
    agree = float((other_probs.argmax(1) == teacher[other_kept].argmax(1)).mean())
    return full, agree, int(other_kept.size)
