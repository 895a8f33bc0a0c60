"""What a training run learns from: the project's embedded images, their human labels, the text head
and the collection's centre, split into a training share and a held-out share of human labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.labeling.adapt import Classifier
from core.labeling.semi import fit_semi
from core.store import repo
from core.store.schema import Project
from core.usecases.labeling.queue import ProjectState

HUMAN_SOURCES = ("human", "import", "review")


@dataclass
class Snapshot:
    project: str
    project_id: int
    model_id: str
    class_names: list[str]
    image_ids: np.ndarray
    embeddings: np.ndarray
    paths: list[str | None]
    labels: np.ndarray               # human label per embedded image, -1 for none
    fit_labels: np.ndarray           # what the live classifier learns from (audits held out, accepted = -2)
    sources: dict[str, int]
    head: np.ndarray | None
    logit_scale: float
    center: np.ndarray | None


def snapshot(session: Session, project: Project, state: ProjectState) -> Snapshot:
    """A copy of the live state's arrays (taken under its lock) plus the files and label sources."""
    if state.model_id is None or not state.embeddings.shape[0]:
        raise InvalidInput(f"project '{project.name}' has no embeddings yet: run `clipmark embed` first")
    current = repo.current_labels(session, project_id=project.id)
    files = {image.id: image.file_path for image in repo.images_of(session, project_id=project.id)}
    with state.lock:
        labels = state.labels.copy()
        fit_labels = state.training_labels()
        image_ids = state.image_ids.copy()
        names = [state.class_names[i] for i in state.label_ids]
    sources: dict[str, int] = {}
    for k, image_id in enumerate(image_ids.tolist()):
        row = current.get(image_id)
        if row is None or row.source not in HUMAN_SOURCES:
            labels[k] = -1
        elif labels[k] >= 0:
            sources[row.source] = sources.get(row.source, 0) + 1
    return Snapshot(project.name, project.id, state.model_id, names, image_ids, state.embeddings,
                    [files.get(i) for i in image_ids.tolist()], labels, fit_labels, sources, state.head,
                    state.logit_scale, state.center)


def check_labels(data: Snapshot) -> None:
    """At least two classes, each with a human label: otherwise there is nothing to learn or to measure."""
    counts = np.bincount(data.labels[data.labels >= 0], minlength=len(data.class_names))
    if len(data.class_names) < 2 or int((counts > 0).sum()) < 2:
        raise InvalidInput(f"project '{data.project}': {int((counts > 0).sum())} of {len(data.class_names)} classes "
                           "have human labels; training needs at least two labeled classes (label some images first)")
    empty = [name for name, count in zip(data.class_names, counts, strict=True) if count == 0]
    if empty:
        raise InvalidInput(f"project '{data.project}': classes with no human label: {', '.join(empty)}; label at "
                           "least one image of each, or archive the classes the model should not know")


def split(labels: np.ndarray, *, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training positions, held-out positions) of the labeled images, stratified by class; a class
    with a single label keeps it for training."""
    if not 0.0 <= holdout < 1.0:
        raise InvalidInput(f"--holdout: a fraction in [0, 1), got {holdout!r}")
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for k in np.unique(labels[labels >= 0]):
        members = rng.permutation(np.flatnonzero(labels == k))
        take = int(round(holdout * members.size)) if members.size > 1 else 0
        held.extend(members[: min(take, members.size - 1)].tolist())
    held_out = np.array(sorted(held), dtype=np.int64)
    train = np.setdiff1d(np.flatnonzero(labels >= 0), held_out)
    return train, held_out


def training_labels(data: Snapshot, held: np.ndarray) -> np.ndarray:
    """The live classifier's training labels with the held-out share unlabeled (-1: back in the pool)."""
    labels = np.where(data.fit_labels >= 0, data.fit_labels, -1)
    labels[held] = -1
    return labels


def fit_on(data: Snapshot, held: np.ndarray) -> Classifier:
    """The project's classifier (core.labeling.semi.fit_semi over every embedded image, as the live state
    fits it, seeded the same way) with the held-out labels left out: with no held-out share it is the
    live classifier exactly."""
    labels = training_labels(data, held)
    rng = np.random.default_rng([data.project_id, int((labels >= 0).sum())])
    return fit_semi(data.embeddings, labels, num_classes=len(data.class_names), text_head=data.head,
                    logit_scale=data.logit_scale, rng=rng, center=data.center)


def head_arrays(classifier: Classifier, dim: int) -> dict[str, np.ndarray]:
    """The classifier as dense arrays (the ONNX head and head.safetensors): Delta and offset on every
    class (zero where the probe does not act), the gate (inf: always on), the class means (zero weight
    when the probe is used)."""
    k = classifier.num_classes
    delta, offset = np.zeros((dim, k), np.float32), np.zeros(k, np.float32)
    if classifier.weights is not None and classifier.offset is not None and classifier.classes is not None:
        delta[:, classifier.classes] = classifier.weights
        offset[classifier.classes] = classifier.offset
    head = classifier.text_head if classifier.text_head is not None else np.zeros((k, dim), np.float32)
    means = classifier.means
    return {"text_head": np.asarray(head, np.float32), "logit_scale": np.array([classifier.logit_scale], np.float32),
            "delta": delta, "offset": offset, "gate": np.array([classifier.gate], np.float32),
            "means": np.zeros((k, dim), np.float32) if means is None else np.asarray(means.means, np.float32),
            "means_center": np.zeros(dim, np.float32) if means is None else np.asarray(means.center, np.float32),
            "means_scale": np.array([0.0 if means is None else means.scale], np.float32),
            "means_known": np.ones(k, np.float32) if means is None else np.asarray(means.known, np.float32),
            "means_weight": np.array([classifier.means_weight if means is not None else 0.0], np.float32)}
