"""The app on a temporary SQLite file with the tiny real open_clip model (random weights),
launched on a free local port the way Gradio's own tests do (prevent_thread_lock=True)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import Settings
from core.models.tiny import TINY_NAME
from core.service import Service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_images(folder: Path, count: int, *, seed: int = 0) -> list[Path]:
    """Distinct small photos-to-be: smooth random colour fields, one PNG each."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((48, 40), Image.Resampling.BILINEAR)
        paths.append(folder / f"img{k:02d}.png")
        image.save(paths[-1])
    return paths


def tiny_settings(tmp: Path, **changes: object) -> Settings:
    base = Settings(db=str(tmp / "app.sqlite"), model=TINY_NAME, pretrained=None, media_dir=tmp / "media",
                    batch_size=8, num_workers=0, user="tester",
                    sam_model="tiny", sam_checkpoint="random")
    return base.with_overrides(**changes)


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tiny_settings(tmp_path))
    yield svc
    svc.close()


def launch(app):  # type: ignore[no-untyped-def]
    """Launch a built app on a free port; returns its local URL."""
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    return url
