"""Export time and peak memory at 10k and 100k images: memory must stay flat (streamed records).

    .venv/bin/python bench/export.py [--sizes 10000,100000] [--formats csv,jsonl,coco,imagefolder,hf]

Synthetic projects are inserted straight into a temporary SQLite file (10 classes; 30% human labels,
a prediction run over every image, 10% with no label at all; 64-d embeddings with near-duplicate
pairs for the split row). Every image row points at one of ten real 32x32 CIFAR JPEGs (or a tiny
generated JPEG), so imagefolder (symlinks) and hf (embedded bytes) have real files to handle.
Each export runs in a fresh process: once timed, once under tracemalloc (Python heap peak);
"max RSS" is the whole process's peak resident memory (VmHWM), imports included."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
K = 10
RUNS = {  # name -> (format, options)
    "csv": ("csv", {}), "jsonl": ("jsonl", {}), "coco": ("coco", {}),
    "imagefolder": ("imagefolder", {"link": "symlink"}), "hf": ("hf", {}),
    "csv+split": ("csv", {"split": "0.8,0.1,0.1"}),
}


def tiny_jpegs(folder: Path) -> list[str]:
    cifar = REPO.parent / "shared" / "assets" / "data" / "cifar10-dev"
    found = sorted(cifar.glob("*/*.jpg"))[:: 100][:K]
    if found:
        return [str(p) for p in found]
    from PIL import Image

    paths = []
    for k in range(K):
        path = folder / f"tiny{k}.jpg"
        Image.new("RGB", (32, 32), (25 * k, 100, 200)).save(path)
        paths.append(str(path))
    return paths


def build(db: Path, n: int, files: list[str]) -> None:
    """A project of `n` images inserted directly (no decoding, no model)."""
    from sqlalchemy import insert

    from core.config import Settings
    from core.service import Service
    from core.store.repo import ClassSpec
    from core.store.schema import CurrentLabel, Embedding, Event, Image, Prediction, PredictionRun

    service = Service(Settings(db=str(db)))
    service.create_project("bench", classes=[ClassSpec(f"class{k}") for k in range(K)])
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n, 64)).astype(np.float32)
    emb[1::50] = emb[0::50][: emb[1::50].shape[0]] + 0.01 * rng.normal(size=(emb[1::50].shape[0], 64))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    probs = rng.dirichlet(np.ones(K), size=n).astype(np.float32)
    with service.sessions.begin() as session:
        session.execute(insert(PredictionRun), [{"id": 1, "project_id": 1, "model_id": "bench@synthetic",
                                                 "model_version": "zero-shot", "label_ids": list(range(1, K + 1))}])
        for start in range(0, n, 5000):
            ids = range(start + 1, min(n, start + 5000) + 1)
            session.execute(insert(Image), [
                {"id": i, "project_id": 1, "sha256": f"{i:064x}", "original_path": f"/data/class{i % K}/img_{i}.jpg",
                 "file_path": files[i % K], "width": 32, "height": 32, "format": "JPEG", "status": "ok"} for i in ids])
            session.execute(insert(Embedding), [
                {"image_id": i, "model_id": "bench@synthetic", "dim": 64,
                 "vector": emb[i - 1].astype(np.float16).tobytes()} for i in ids])
            session.execute(insert(Prediction), [
                {"run_id": 1, "image_id": i, "probs": probs[i - 1].tobytes(),
                 "label_id": int(probs[i - 1].argmax()) + 1, "confidence": float(probs[i - 1].max())}
                for i in ids if i % 10])
            human = [i for i in ids if i % 10 in (1, 2, 3)]
            session.execute(insert(Event), [
                {"id": i, "project_id": 1, "image_id": i, "action": "import", "source": "import",
                 "label_after_id": i % K + 1} for i in human])
            session.execute(insert(CurrentLabel), [
                {"image_id": i, "project_id": 1, "label_id": i % K + 1, "source": "import", "event_id": i}
                for i in human])
    service.close()


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts
    from its parent's size at fork, which here is the builder's, not the export's."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(db: str, run: str, out: str) -> dict[str, float]:
    from core.config import Settings
    from core.service import Service

    fmt, options = RUNS[run]
    service = Service(Settings(db=db), migrate=False)
    start = time.perf_counter()
    report = service.export("bench", fmt=fmt, out=out, **options)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    service.export("bench", fmt=fmt, out=out + ".traced", **options)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = peak_rss_mb()
    return {"images": report["counts"]["images"], "seconds": seconds, "heap_peak_mb": peak / 2**20,
            "max_rss_mb": rss, "moved_groups": (report.get("leak_check") or {}).get("moved_groups", "")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--formats", default=",".join(RUNS))
    parser.add_argument("--worker", nargs=3, metavar=("DB", "RUN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    with tempfile.TemporaryDirectory(prefix="clipmark-bench-export-") as tmp:
        files = tiny_jpegs(Path(tmp))
        print(f"{'run':<12} {'images':>8} {'seconds':>8} {'images/s':>9} {'heap peak MB':>13} {'max RSS MB':>11}")
        for n in (int(s) for s in args.sizes.split(",")):
            db = Path(tmp) / f"bench{n}.sqlite"
            build(db, n, files)
            for run in args.formats.split(","):
                out = Path(tmp) / f"out-{n}-{run}"
                result = subprocess.run([sys.executable, __file__, "--worker", str(db), run, str(out)],
                                        check=True, capture_output=True, text=True, cwd=REPO,
                                        env={**os.environ, "PYTHONPATH": str(REPO)})
                r = json.loads(result.stdout.strip().splitlines()[-1])
                extra = f"  (leak check moved {r['moved_groups']} groups)" if r["moved_groups"] != "" else ""
                print(f"{run:<12} {r['images']:>8} {r['seconds']:>8.2f} {r['images'] / r['seconds']:>9.0f} "
                      f"{r['heap_peak_mb']:>13.1f} {r['max_rss_mb']:>11.0f}{extra}", flush=True)


if __name__ == "__main__":
    main()
