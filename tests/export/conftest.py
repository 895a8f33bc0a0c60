"""One real project shared by the export tests: CIFAR-10 JPEGs, labels from import, human corrections,
pseudo-labels from the tiny open_clip model, and images with no label at all.

`truth` is read from the store with its own queries (not through core.export.records), so the exports
are checked against the database, not against the code that wrote them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from core.config import Settings
from core.service import Service
from core.store import repo
from core.store.repo import ClassSpec
from core.store.schema import CurrentLabel, Image, LabelClass, Prediction, PredictionRun, User

CLASSES = ("airplane", "automobile", "bird", "cat", "ship")  # ship: a class with no image
PER_CLASS = 8


@dataclass(frozen=True)
class Truth:
    label: str | None
    source: str | None
    confidence: float | None
    annotator: str | None
    model_id: str | None
    model_version: str | None
    timestamp: str | None
    sha256: str
    path: str


@dataclass
class Built:
    service: Service
    db: str
    name: str
    root: Path                      # the copied JPEGs, one folder per CIFAR class
    truth: dict[int, Truth]         # image_id -> what the store says
    corrected: list[int]


def copy_cifar(cifar_dir: Path, root: Path, classes: tuple[str, ...], per_class: int) -> Path:
    for name in classes:
        (root / name).mkdir(parents=True)
        for image in sorted((cifar_dir / name).glob("*.jpg"))[:per_class]:
            shutil.copy(image, root / name / image.name)
    return root


def read_truth(service: Service, project: str) -> dict[int, Truth]:
    """The label of each image as the store has it: the current human/import label, else the latest
    run's prediction, else none."""
    from datetime import UTC

    iso = lambda t: None if t is None else t.replace(tzinfo=UTC).isoformat()  # noqa: E731
    with service.context.sessions.begin() as session:
        project_id = repo.project_by_name(session, name=project).id
        names = dict(session.execute(select(LabelClass.id, LabelClass.name)).all())
        users = dict(session.execute(select(User.id, User.name)).all())
        run = session.scalars(select(PredictionRun).where(PredictionRun.project_id == project_id)
                              .order_by(PredictionRun.id.desc())).first()
        preds = {p.image_id: p for p in session.scalars(select(Prediction).where(Prediction.run_id == run.id))}
        current = {c.image_id: c for c in session.scalars(select(CurrentLabel))}
        truth = {}
        for image in session.scalars(select(Image).where(Image.project_id == project_id, Image.status == "ok")):
            c, p = current.get(image.id), preds.get(image.id)
            if c is not None:
                t = Truth(names[c.label_id], c.source, None, users.get(c.annotator_id), None, None,
                          iso(c.updated_at), image.sha256, image.original_path)
            elif p is not None:
                t = Truth(names[p.label_id], "model", p.confidence, None, run.model_id, run.model_version,
                          iso(p.created_at), image.sha256, image.original_path)
            else:
                t = Truth(None, None, None, None, None, None, None, image.sha256, image.original_path)
            truth[image.id] = t
        return truth


@pytest.fixture(scope="session")
def built(cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    from core.models.tiny import tiny_spec

    base = tmp_path_factory.mktemp("export-project")
    root = base / "cifar"
    copy_cifar(cifar_dir, root / "labeled", ("airplane", "automobile"), PER_CLASS)
    copy_cifar(cifar_dir, root / "unlabeled", ("bird", "cat"), PER_CLASS)
    copy_cifar(cifar_dir, root / "late", ("deer",), PER_CLASS)
    db = str(base / "p.sqlite")
    service = Service(Settings(db=db, media_dir=base / "media"))
    service.projects.create("p", classes=[ClassSpec(c) for c in CLASSES])
    service.importing.images("p", [root / "labeled"], labels_from="folders", progress=False)
    service.importing.images("p", [root / "unlabeled"], progress=False)
    service.embedding.embed("p", spec=tiny_spec(), progress=False)
    service.embedding.predict("p")
    service.importing.images("p", [root / "late"], progress=False)  # after predict: no label at all
    with service.context.sessions.begin() as session:
        by_path = {Path(i.original_path).parent.name + "/" + Path(i.original_path).name: i.id
                   for i in session.scalars(select(Image))}
    airplane, birds = sorted(k for k in by_path if k.startswith("airplane/")), sorted(
        k for k in by_path if k.startswith("bird/"))
    corrections = [(by_path[birds[0]], "bird", "alice"), (by_path[birds[1]], "bird", "bob"),
                   (by_path[birds[2]], "cat", "alice"), (by_path[airplane[0]], "ship", "alice")]
    for image_id, label, user in corrections:
        service.labeling.decide("p", image_id=image_id, action="correct", label=label, annotator=user)
    truth = read_truth(service, "p")
    return Built(service, db, "p", root, truth, [c[0] for c in corrections])
