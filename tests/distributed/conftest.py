"""A local Ray (2 CPUs) shared by the distributed tests, and a small CIFAR project to embed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from core.service import Service


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'clipmark[ray]'")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture()
def cifar_folder(cifar_dir: Path, tmp_path: Path) -> Path:
    """Forty CIFAR-10 JPEGs (ten of each of four classes), copied."""
    root = tmp_path / "cifar"
    for name in ("airplane", "cat", "dog", "ship"):
        (root / name).mkdir(parents=True)
        for image in sorted((cifar_dir / name).glob("*.jpg"))[:10]:
            shutil.copy(image, root / name / image.name)
    return root


def service_with(db: Path, folder: Path, *projects: str) -> Service:
    """A service over `db` whose projects each imported `folder` (the same images, their own ids)."""
    service = Service(Settings(db=str(db), media_dir=db.parent / "media", model="clipmark-tiny", pretrained=None))
    for name in projects:
        service.projects.create(name, classes=["airplane", "cat", "dog", "ship"])
        service.importing.images(name, [folder], progress=False)
    return service
