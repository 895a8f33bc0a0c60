"""`embed --engine ray` on a local Ray (2 CPUs) with the tiny open_clip model on real CIFAR-10 JPEGs:
the same vectors as the local pipeline, and a stopped or failed job resumes without recomputing
what it stored (the encoder's calls are counted in the actors, which log the ids they encoded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from core.errors import ModelLoadError
from core.models.tiny import tiny_spec
from core.store import repo
from core.store.schema import Embedding, Image
from core.usecases.distributed.clip_actor import ClipEmbedder
from core.usecases.distributed.clip_job import embed_project_ray
from core.usecases.distributed.engine import RayOptions
from tests.distributed.conftest import service_with

pytestmark = [pytest.mark.slow, pytest.mark.assets]
SMALL = RayOptions(actors=2, batch_size=8, write_rows=8)


def vectors_by_file(service: Any, project: str) -> dict[str, np.ndarray]:
    with service.context.sessions.begin() as session:
        project_id = repo.project_by_name(session, name=project).id
        rows = session.execute(select(Image.sha256, Embedding.vector).join(Embedding, Embedding.image_id == Image.id)
                               .where(Image.project_id == project_id)).all()
    return {sha: np.frombuffer(vector, dtype=np.float16).astype(np.float32) for sha, vector in rows}


def stored_ids(service: Any, project: str) -> set[int]:
    with service.context.sessions.begin() as session:
        project_id = repo.project_by_name(session, name=project).id
        return set(session.scalars(select(Embedding.image_id).join(Image, Image.id == Embedding.image_id)
                                   .where(Image.project_id == project_id)))


def logging_embedder(log: Path, *, fail_after: int | None = None) -> type:
    """A ClipEmbedder that appends the ids it encodes to `log`, and raises on its call number
    `fail_after + 1` (each actor counts its own calls). Made in a function: Ray ships it by value."""

    class Logged(ClipEmbedder):
        calls = 0

        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            self.calls += 1
            if fail_after is not None and self.calls > fail_after:
                raise RuntimeError(f"actor stopped after {fail_after} batches")
            with open(log, "a") as out:
                out.write("".join(f"{int(i)}\n" for i in batch["image_id"]))
            return super().__call__(batch)

    return Logged


def logged_ids(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_ray_embeddings_equal_the_local_pipeline(ray_local: Any, cifar_folder: Path, tmp_path: Path) -> None:
    service = service_with(tmp_path / "e.sqlite", cifar_folder, "local", "ray")
    local = service.embedding.embed("local", spec=tiny_spec(), progress=False, engine="local")
    on_ray = service.embedding.embed("ray", spec=tiny_spec(), engine="ray", ray=SMALL)
    assert (local.computed, on_ray.computed, on_ray.failed) == (40, 40, [])
    expected, got = vectors_by_file(service, "local"), vectors_by_file(service, "ray")
    assert set(got) == set(expected) and len(got) == 40
    worst = max(float(np.abs(got[sha] - expected[sha]).max()) for sha in expected)
    assert worst <= 1e-3
    again = service.embedding.embed("ray", spec=tiny_spec(), engine="ray", ray=SMALL)
    assert (again.computed, again.cached) == (0, 40)
    service.close()


def test_stopped_driver_resumes_without_recomputing(ray_local: Any, cifar_folder: Path, tmp_path: Path) -> None:
    service = service_with(tmp_path / "s.sqlite", cifar_folder, "p")
    project_id, log = 1, tmp_path / "encoded.log"

    def stop_after_first_write(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_project_ray(service.context.sessions, tiny_spec(), project_id=project_id, options=SMALL,
                          max_pixels=10**8, on_progress=stop_after_first_write, actor=logging_embedder(log))
    kept = stored_ids(service, "p")
    assert 0 < len(kept) < 40
    log.unlink()
    summary = embed_project_ray(service.context.sessions, tiny_spec(), project_id=project_id, options=SMALL,
                                max_pixels=10**8, actor=logging_embedder(log))
    encoded = logged_ids(log)
    assert (summary.cached, summary.computed) == (len(kept), 40 - len(kept))
    assert sorted(encoded) == sorted(set(encoded)) and not kept & set(encoded)
    assert kept | set(encoded) == stored_ids(service, "p") and len(stored_ids(service, "p")) == 40
    service.close()


def test_failed_actor_job_resumes_without_recomputing(ray_local: Any, cifar_folder: Path, tmp_path: Path) -> None:
    service = service_with(tmp_path / "f.sqlite", cifar_folder, "p")
    log = tmp_path / "encoded.log"
    with pytest.raises(ModelLoadError, match="run the same command again to resume"):
        embed_project_ray(service.context.sessions, tiny_spec(), project_id=1, options=SMALL, max_pixels=10**8,
                          actor=logging_embedder(log, fail_after=1))
    kept = stored_ids(service, "p")
    assert len(kept) < 40 and kept <= set(logged_ids(log))
    log.unlink(missing_ok=True)
    summary = embed_project_ray(service.context.sessions, tiny_spec(), project_id=1, options=SMALL,
                                max_pixels=10**8, actor=logging_embedder(log))
    encoded = set(logged_ids(log))
    assert (summary.cached, summary.computed, summary.failed) == (len(kept), 40 - len(kept), [])
    assert not kept & encoded and kept | encoded == stored_ids(service, "p")
    service.close()
