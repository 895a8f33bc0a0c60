"""`sam-embed --engine ray`: the tiny random-weight Sam on a local Ray writes the same cache files as
the local path, and skips what is cached (the actors log the images they encode)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from core.config import Settings
from core.service import Service
from core.store.schema import Image
from core.usecases.distributed.engine import RayOptions
from core.usecases.distributed.sam_actor import SamEncoder
from core.usecases.distributed.sam_job import sam_embed_ray

pytestmark = [pytest.mark.slow, pytest.mark.assets]


def sam_service(db: Path, media: Path) -> Service:
    return Service(Settings(db=str(db), media_dir=media, model="clipmark-tiny", pretrained=None, sam_model="tiny"))


def logging_encoder(log: Path) -> type:
    class Logged(SamEncoder):
        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            with open(log, "a") as out:
                out.write("".join(f"{int(i)}\n" for i in batch["image_id"]))
            return super().__call__(batch)

    return Logged


def test_ray_sam_cache_equals_local_and_skips_cached(ray_local: Any, cifar_folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    local = sam_service(db, tmp_path / "local-media")
    local.projects.create("p", classes=["airplane", "cat"])
    local.importing.images("p", [cifar_folder / "airplane"], progress=False)
    everything = local.regions.embed_all("p")
    assert everything.computed == 10
    on_ray = sam_service(db, tmp_path / "ray-media")
    on_ray.regions.embed_all("p", image_ids=[1, 2, 3])  # three cached before the Ray job
    log = tmp_path / "encoded.log"
    report = sam_embed_ray(on_ray.context, on_ray.regions.cache, on_ray.regions.runtime.spec, project="p",
                           image_ids=None, options=RayOptions(actors=2), actor=logging_encoder(log))
    assert (report.images, report.cached, report.computed, report.errors) == (10, 3, 7, ())
    assert sorted(int(line) for line in log.read_text().split()) == list(range(4, 11))
    model_id = on_ray.regions.runtime.spec.model_id
    with local.context.sessions.begin() as session:
        shas = list(session.scalars(select(Image.sha256).order_by(Image.id)))
    for sha in shas:
        expected, got = local.regions.cache.get(model_id, sha), on_ray.regions.cache.get(model_id, sha)
        assert got is not None and expected is not None
        assert got.original_size == expected.original_size and got.input_size == expected.input_size
        assert np.abs(got.features.astype(np.float32) - expected.features.astype(np.float32)).max() <= 1e-3
    local.close()
    on_ray.close()
