"""bench/scale.py --ray: images/s of `embed --engine ray` against the local pipeline, same images, same run.

Both projects hold the same `images` rows (CIFAR-10 JPEGs of ../shared/assets, reused when fewer, each row
its own hash). Local: `embed --engine local` (DataLoader + one model in this process), model load
included. Ray: a local Ray started first (as a cluster would be), then `embed --engine ray` with `actors`
model actors, actor start and model loads included.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.config import Settings
from core.models.base import ModelSpec
from core.service import Service
from core.store import bulk, repo
from core.store.schema import Image, utcnow
from core.usecases.distributed.engine import RayOptions
from tests.conftest import assets_root


def image_files(count: int) -> list[str]:
    files = sorted(str(p) for p in (assets_root() / "data" / "cifar10-dev").glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"--ray: no CIFAR-10 images under {assets_root()} (set CLIPMARK_ASSETS)")
    return [files[k % len(files)] for k in range(count)]


def add_project(service: Service, name: str, files: list[str]) -> None:
    service.projects.create(name, classes=["a", "b"])
    with service.context.sessions.begin() as session:
        project_id = repo.project_by_name(session, name=name).id  # type: ignore[union-attr]
        bulk.insert_rows(session, Image, [
            {"project_id": project_id, "sha256": f"{project_id:04x}{k:060x}", "original_path": path,
             "file_path": path, "width": 32, "height": 32, "format": "JPEG", "status": "ok", "created_at": utcnow()}
            for k, path in enumerate(files)])


def compare_engines(workdir: Path, *, db: str, images: int, arch: str, actors: int) -> None:
    from bench.scale import database

    files = image_files(images)
    spec = ModelSpec(arch=arch, pretrained=None)
    with database(db, workdir, 0) as url:
        service = Service(Settings(db=url,
                                   media_dir=workdir / "ray-media", user="bench", batch_size=32))
        for name in ("local", "ray"):
            add_project(service, name, files)
        began = time.perf_counter()
        local = service.embedding.embed("local", spec=spec, engine="local", progress=False)
        local_s = time.perf_counter() - began
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        began = time.perf_counter()
        on_ray = service.embedding.embed("ray", spec=spec, engine="ray",
                                         ray=RayOptions(actors=actors, batch_size=32, write_rows=64))
        ray_s = time.perf_counter() - began
        ray.shutdown()
        service.close()
    local_ips, ray_ips = local.computed / local_s, on_ray.computed / ray_s
    print(f"ray: {arch} random weights, {images} images, {os.cpu_count()} CPUs: local {local_ips:.1f} img/s "
          f"({local_s:.1f} s, model load included); ray {actors} actors {ray_ips:.1f} img/s "
          f"({ray_s:.1f} s, actor start included); ratio {ray_ips / local_ips:.2f}",
          flush=True)
