"""A small CIFAR-10 project embedded with the tiny real open_clip model: six human labels per class
(imported from folders), four unlabeled images per class, and a stored prediction run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CLASSES = "airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck"
TINY = ["--model", "clipmark-tiny", "--pretrained", "none"]


def copy_cifar(cifar_dir: Path, target: Path, *, start: int, count: int, classes: list[str] | None = None) -> Path:
    for class_dir in sorted(p for p in cifar_dir.iterdir() if p.is_dir()):
        if classes is None or class_dir.name in classes:
            (target / class_dir.name).mkdir(parents=True, exist_ok=True)
            for image in sorted(class_dir.glob("*.jpg"))[start : start + count]:
                shutil.copy(image, target / class_dir.name / image.name)
    return target


@pytest.fixture(scope="module")
def project_db(cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    from core.cli import main

    root = tmp_path_factory.mktemp("training")
    db = str(root / "p.sqlite")
    labeled = copy_cifar(cifar_dir, root / "labeled", start=0, count=6)
    unlabeled = copy_cifar(cifar_dir, root / "unlabeled", start=6, count=4)
    assert main(["init", "--db", db, "--project", "c", "--labels", CLASSES]) == 0
    assert main(["import", "--db", db, "--project", "c", str(labeled), "--labels-from", "folders"]) == 0
    assert main(["import", "--db", db, "--project", "c", str(unlabeled)]) == 0
    assert main(["embed", "--db", db, "--project", "c", *TINY, "--batch-size", "50"]) == 0
    assert main(["predict", "--db", db, "--project", "c"]) == 0
    return db


@pytest.fixture()
def service(project_db: str):
    from core.config import Settings
    from core.service import Service

    service = Service(Settings(db=project_db, model="clipmark-tiny", pretrained=None))
    yield service
    service.close()
