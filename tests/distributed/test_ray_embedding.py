"""`embed --engine ray` on a local Ray (2 CPUs) with the tiny open_clip model on real CIFAR-10 JPEGs:
the same vectors as the local pipeline, and a stopped or failed job resumes without recomputing
what it stored (the encoder's calls are counted in the actors, which log the ids they encoded)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from core.cli import main
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


def cpus_come_back(ray: Any, *, within_s: float = 30.0) -> bool:
    """Whether every CPU of the local Ray is free again within `within_s` (a killed actor's CPU is
    returned by the raylet a moment after the kill)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if ray.available_resources().get("CPU", 0.0) >= ray.cluster_resources()["CPU"]:
            return True
        time.sleep(0.2)
    return False


def logged_ids(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_ray_embeddings_equal_the_local_pipeline(ray_local: Any, cifar_folder: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The local pipeline, then `clipmark embed --engine ray` on a second project of the same images."""
    service = service_with(tmp_path / "e.sqlite", cifar_folder, "local", "ray")
    local = service.embedding.embed("local", spec=tiny_spec(), progress=False, engine="local")
    assert local.computed == 40
    assert main(["embed", "--db", str(tmp_path / "e.sqlite"), "--project", "ray", "--model", "clipmark-tiny",
                 "--pretrained", "none", "--engine", "ray", "--actors", "2", "--batch-size", "8"]) == 0
    assert "embedded 40, cached 0, failed 0" in capsys.readouterr().out
    expected, got = vectors_by_file(service, "local"), vectors_by_file(service, "ray")
    assert set(got) == set(expected) and len(got) == 40
    worst = max(float(np.abs(got[sha] - expected[sha]).max()) for sha in expected)
    assert worst <= 1e-3
    again = service.embedding.embed("ray", spec=tiny_spec(), engine="ray", ray=SMALL)
    assert (again.computed, again.cached) == (0, 40)
    service.close()


def test_failed_and_stopped_jobs_resume_without_recomputing(ray_local: Any, cifar_folder: Path,
                                                            tmp_path: Path) -> None:
    """An actor fails after its first batch; then the driver is stopped after its first write; then the
    job runs to the end. No run encodes an image an earlier run stored."""
    service = service_with(tmp_path / "r.sqlite", cifar_folder, "p")
    logs = [tmp_path / f"run{k}.log" for k in range(3)]

    def run(**options: Any) -> Any:
        return embed_project_ray(service.context.sessions, tiny_spec(), project_id=1, options=SMALL,
                                 max_pixels=10**8, **options)

    with pytest.raises(ModelLoadError, match="run the same command again to resume"):
        run(actor=logging_embedder(logs[0], fail_after=1))
    after_failure = stored_ids(service, "p")
    assert cpus_come_back(ray_local), "the failed job's actors still hold CPUs"
    assert len(after_failure) < 40 and after_failure <= set(logged_ids(logs[0]))

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(actor=logging_embedder(logs[1]), on_progress=stop)
    after_stop = stored_ids(service, "p")
    assert cpus_come_back(ray_local), "the stopped job's actors still hold CPUs"
    assert len(after_failure) < len(after_stop) < 40 and not after_failure & set(logged_ids(logs[1]))

    summary = run(actor=logging_embedder(logs[2]))
    encoded = logged_ids(logs[2])
    assert (summary.cached, summary.computed, summary.failed) == (len(after_stop), 40 - len(after_stop), [])
    assert len(encoded) == len(set(encoded)) and not after_stop & set(encoded)
    assert after_stop | set(encoded) == stored_ids(service, "p") and len(stored_ids(service, "p")) == 40
    assert cpus_come_back(ray_local)
    service.close()
