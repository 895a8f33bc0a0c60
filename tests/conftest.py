"""Shared fixtures. Real data comes from ../shared/assets (or $CLIPMARK_ASSETS); tests that need
it skip with a reason where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def assets_root() -> Path:
    return Path(os.environ.get("CLIPMARK_ASSETS", REPO.parent / "shared" / "assets")).resolve()


@pytest.fixture(scope="session")
def assets() -> Path:
    root = assets_root()
    if not (root / "README.md").is_file():
        pytest.skip(f"shared assets not found at {root} (set CLIPMARK_ASSETS)")
    return root


@pytest.fixture(scope="session")
def cifar_dir(assets: Path) -> Path:
    path = assets / "data" / "cifar10-dev"
    if not (path / "manifest.csv").is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def embeddings_dir(assets: Path) -> Path:
    path = assets / "embeddings"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path
