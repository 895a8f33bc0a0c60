"""Server-side time from a decision to the next item being ready in the Label view.

Usage: .venv/bin/python bench/ui_latency.py [--sizes 1000,10000,100000] [--decisions 30] [--prelabeled 0]

For each size, a project of synthetic L2-normalised embeddings (D=512, K=10 clustered classes,
a text head near the class centres) is written straight into a temporary SQLite store. Then the
Label view's own handler (`webapp.views.label.ui_pick`: decide -> commit -> refit + re-rank ->
next items -> display copy + HTML) runs `--decisions` times with the right class, and the time
is split into: the service's decide call (of which `refit` = fit + rescore + rank, as
ProjectState reports it) and the rest (next items, thumbnails, progress, HTML).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings  # noqa: E402
from core.service import Service  # noqa: E402
from core.store import repo  # noqa: E402
from core.store.repo import ClassSpec  # noqa: E402
from core.store.schema import Image  # noqa: E402
from core.usecases.scoring import head_key  # noqa: E402
from webapp.views import label  # noqa: E402

DIM, CLASSES, MODEL_ID = 512, 10, "synthetic@bench"


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centres = rng.standard_normal((CLASSES, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    common = rng.standard_normal(DIM).astype(np.float32)
    common /= np.linalg.norm(common)
    truth = rng.integers(0, CLASSES, size=n)
    emb = 0.8 * common + 0.5 * centres[truth] + 0.05 * rng.standard_normal((n, DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    head = centres + 0.5 * rng.standard_normal((CLASSES, DIM)).astype(np.float32) / np.sqrt(DIM)
    head /= np.linalg.norm(head, axis=1, keepdims=True)
    return emb.astype(np.float32), truth, head


def build_project(service: Service, *, n: int, picture: Path, rng: np.random.Generator) -> dict[int, str]:
    """Bulk-insert n images (all showing one small real picture, each its own hash) with embeddings."""
    emb, truth, head = synthetic(n, rng)
    names = [f"class{k}" for k in range(CLASSES)]
    service.projects.create("bench", classes=[ClassSpec(c) for c in names])
    with service.context.sessions.begin() as session:
        project = repo.project_by_name(session, name="bench")
        project.settings = {"model_id": MODEL_ID}
        rows = [{"project_id": project.id, "sha256": f"{k:064x}", "original_path": f"synthetic/{k}.jpg",
                 "file_path": str(picture), "width": 64, "height": 48, "format": "JPEG", "status": "ok"}
                for k in range(n)]
        session.execute(insert(Image), rows)
        ids = list(session.scalars(select(Image.id).where(Image.project_id == project.id).order_by(Image.id)))
        repo.add_embeddings(session, model_id=MODEL_ID, image_ids=ids, vectors=emb)
        classes = repo.classes_of(session, project_id=project.id)
        repo.save_text_head(session, project_id=project.id, model_id=MODEL_ID, prompts_hash=head_key(classes),
                            label_ids=[c.id for c in classes], vectors=head, logit_scale=100.0)
    return {i: names[t] for i, t in zip(ids, truth, strict=True)}


def percentiles(values: list[float]) -> str:
    ms = 1000 * np.asarray(values)
    return f"{np.percentile(ms, 50):7.1f} {np.percentile(ms, 95):7.1f}"


def run_size(n: int, *, decisions: int, prelabeled: int, workdir: Path, picture: Path, mode: str) -> None:
    """mode "background": what `clipmark serve` does (refit after the answer); "sync": refit first."""
    db = workdir / f"bench-{n}-{mode}.sqlite"
    service = Service(Settings(db=str(db), media_dir=workdir / "media", user="bench"),
                      background_refit=mode == "background")
    truth = build_project(service, n=n, picture=picture, rng=np.random.default_rng(n))
    start = time.perf_counter()
    service.labeling.state("bench")
    build_s = time.perf_counter() - start
    if prelabeled:
        ids = list(truth)[:prelabeled]
        for name in sorted(set(truth[i] for i in ids)):
            same = [i for i in ids if truth[i] == name]
            for first in range(0, len(same), 500):  # a call takes at most 500 ids
                service.labeling.decide_many("bench", image_ids=same[first:first + 500], action="correct", label=name)
    _, _, current, _ = label.ui_show(service, "bench")
    totals, decides, refits = [], [], []
    decide = service.labeling.decide  # the decision and the next items' leases: one transaction

    def timed_decide(*args, **kwargs):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        result = decide(*args, **kwargs)
        decides.append(time.perf_counter() - began)
        refits.append(result.decision.update_seconds)
        return result

    service.labeling.decide = timed_decide  # type: ignore[method-assign]
    for _ in range(decisions):
        began = time.perf_counter()
        _, _, current = label.ui_pick(service, "bench", current, truth[int(current)])
        totals.append(time.perf_counter() - began)
    rest = [t - d for t, d in zip(totals, decides, strict=True)]
    service.wait_for_refits(120)
    version = service.labeling.state("bench").classifier.version  # type: ignore[union-attr]
    print(f"{mode:>10} {n:>8} {prelabeled + decisions:>6} {percentiles(totals)} {percentiles(decides)} "
          f"{percentiles(refits)} "
          f"{percentiles(rest)} {build_s:8.2f}  {version}", flush=True)
    service.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--decisions", type=int, default=30)
    parser.add_argument("--prelabeled", type=int, default=0, help="labels made before timing starts")
    parser.add_argument("--modes", default="background,sync", help="refit modes to compare, side by side")
    args = parser.parse_args(argv)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"decision -> next item ready, ms p50 p95 over {args.decisions} decisions; D={DIM} K={CLASSES}; "
          f"{os.cpu_count()} CPUs, OPENBLAS_NUM_THREADS={threads}")
    print(f"{'refit':>10} {'images':>8} {'labels':>6} {'total p50/p95':>15} {'decide p50/p95':>15} "
          f"{'refit p50/p95':>15} "
          f"{'view p50/p95':>15} {'state s':>8}  model")
    with tempfile.TemporaryDirectory(prefix="clipmark-bench-") as folder:
        workdir = Path(folder)
        picture = workdir / "picture.jpg"
        PILImage.new("RGB", (64, 48), (120, 160, 200)).save(picture)
        for n in (int(s) for s in args.sizes.split(",")):
            for mode in args.modes.split(","):
                run_size(n, decisions=args.decisions, prelabeled=args.prelabeled, workdir=workdir, picture=picture,
                         mode=mode)


if __name__ == "__main__":
    main()
