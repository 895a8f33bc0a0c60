"""Scale: what a big pool costs to build, open and serve, and embedding on Ray against the local pipeline.

Usage: .venv/bin/python bench/scale.py [--images 100000,1000000] [--db sqlite|postgres] [--decisions 30]
                                       [--ray] [--ray-images 400] [--ray-model ViT-B-32]

Per size, a synthetic project (D=512, K=10; bench/ui_latency.py's own `build_project`) is written into a
fresh SQLite file or a throw-away PostgreSQL (tests/pg.py), then opened in a fresh process with the web
server's settings (refit in the background) which measures: the opening (Service() plus the first next
item), its RSS after opening, decision -> next item p50/p95 (`decide(next_n=1)`, the web's call), status,
a grid page, the dashboard, the CSV export and the near-duplicate grouping the export's leak check runs
(the whole pool, or `--dup-limit` rows: all pairs up to 20k rows, a faiss index above). The memory-mapped
vector file (core.store.vectors) is written by the build's own embedding write (write-through), so the
build time includes it and "open" is the first opening after the embedding, as a server meets it.

`--ray`: images/s of `embed --engine ray` (a local Ray, `--actors` actors; cluster start excluded, actor
start included) against the local pipeline (DataLoader + one model) on the same images in the same run:
`--ray-images` CIFAR-10 JPEGs from ../shared/assets (replicated as rows when fewer), random weights.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.ui_latency import build_project  # noqa: E402
from core.config import Settings  # noqa: E402
from core.service import Service  # noqa: E402

PROJECT = "bench"


@contextlib.contextmanager
def database(kind: str, workdir: Path, n: int) -> Iterator[str]:
    if kind == "sqlite":
        yield str(workdir / f"scale-{n}.sqlite")
        return
    from tests import pg

    reason = pg.available()
    if reason:
        raise SystemExit(f"--db postgres: {reason}")
    with pg.postgres_server() as url:
        yield url


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(call: Callable[[], Any], repeat: int = 1) -> float:
    """The median wall time of `repeat` calls, in ms."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def build(url: str, workdir: Path, n: int) -> tuple[float, Path]:
    """Build the project; (seconds, the file holding each image's true class for the child)."""
    service = Service(Settings(db=url, media_dir=workdir / "media", user="bench"))
    picture = workdir / "picture.jpg"
    PILImage.new("RGB", (64, 48), (120, 160, 200)).save(picture)
    began = time.perf_counter()
    truth = build_project(service, n=n, picture=picture, rng=np.random.default_rng(n))
    seconds = time.perf_counter() - began
    service.close()
    path = workdir / f"truth-{n}.json"
    path.write_text(json.dumps(truth))
    return seconds, path


def serve_figures(url: str, workdir: Path, truth_file: Path, *, decisions: int, dup_limit: int) -> dict[str, Any]:
    """In this (fresh) process: open the project as the web server does, then time its requests."""
    truth = {int(k): v for k, v in json.loads(truth_file.read_text()).items()}
    began = time.perf_counter()
    service = Service(Settings(db=url, media_dir=workdir / "media", user="bench"), background_refit=True)
    current = service.labeling.next_items(PROJECT, n=1)[0].image_id
    figures: dict[str, Any] = {"open_s": time.perf_counter() - began, "rss_mb": rss_mb()}
    steps = []
    for _ in range(decisions):
        began = time.perf_counter()
        decided = service.labeling.decide(PROJECT, image_id=current, action="correct", label=truth[current], next_n=1)
        steps.append(time.perf_counter() - began)
        current = decided.next[0].image_id
    service.wait_for_refits(300)
    figures["decide_p50_ms"], figures["decide_p95_ms"] = (1000 * float(np.percentile(steps, q)) for q in (50, 95))
    figures["status_ms"] = timed(lambda: service.projects.status(PROJECT), repeat=3)
    figures["grid_ms"] = timed(lambda: service.browse.grid(PROJECT, "class0", page=1), repeat=3)
    figures["dashboard_ms"] = timed(lambda: service.browse.dashboard(PROJECT), repeat=3)
    figures["csv_s"] = timed(lambda: service.exporting.export(PROJECT, fmt="csv", out=workdir / "labels.csv",
                                                              overwrite=True)) / 1000
    figures.update(near_duplicates(service, dup_limit))
    figures["rss_end_mb"] = rss_mb()
    service.close()
    return figures


def near_duplicates(service: Service, limit: int) -> dict[str, Any]:
    from core.export.options import DEFAULT_LEAK_THRESHOLD
    from core.export.split import near_duplicate_groups

    embeddings = service.labeling.state(PROJECT).embeddings
    rows = embeddings[:limit] if limit else embeddings
    ms = timed(lambda: near_duplicate_groups(np.asarray(rows, dtype=np.float32), threshold=DEFAULT_LEAK_THRESHOLD))
    return {"dup_s": ms / 1000, "dup_rows": len(rows)}


def run_size(kind: str, n: int, workdir: Path, *, decisions: int, dup_limit: int) -> None:
    with database(kind, workdir, n) as url:
        build_s, truth_file = build(url, workdir, n)
        child = subprocess.run([sys.executable, __file__, "--child", url, "--workdir", str(workdir), "--truth",
                                str(truth_file), "--decisions", str(decisions), "--dup-limit", str(dup_limit)],
                               capture_output=True, text=True, check=False)
        if child.returncode:
            raise SystemExit(f"the serving process failed:\n{child.stderr[-3000:]}")
        f = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{kind:>8} {n:>8} {build_s:8.1f} {f['open_s']:7.2f} {f['rss_mb']:8.0f} {f['decide_p50_ms']:7.1f} "
          f"{f['decide_p95_ms']:7.1f} {f['status_ms']:8.1f} {f['grid_ms']:7.1f} {f['dashboard_ms']:8.1f} "
          f"{f['csv_s']:6.2f} {f['dup_s']:7.2f} ({f['dup_rows']} rows) rss_end {f['rss_end_mb']:.0f} MB", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="100000", help="pool sizes, comma-separated")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--decisions", type=int, default=30)
    parser.add_argument("--dup-limit", type=int, default=0,
                        help="rows of the near-duplicate grouping (0: the whole pool; faiss above 20k rows)")
    parser.add_argument("--ray", action="store_true", help="also compare embed --engine ray with the local pipeline")
    parser.add_argument("--ray-images", type=int, default=400)
    parser.add_argument("--ray-model", default="ViT-B-32")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--truth", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        figures = serve_figures(args.child, Path(args.workdir), Path(args.truth), decisions=args.decisions,
                                dup_limit=args.dup_limit)
        print(json.dumps(figures))
        return
    sizes = [int(s) for s in args.images.split(",") if s]
    print(f"{os.cpu_count()} CPUs; D=512 K=10; opened in a fresh process with background refits (the web server); "
          f"times in ms unless marked s")
    print(f"{'db':>8} {'images':>8} {'build s':>8} {'open s':>7} {'RSS MB':>8} {'dec p50':>7} {'dec p95':>7} "
          f"{'status':>8} {'grid':>7} {'dashbrd':>8} {'csv s':>6} {'dup s':>7}")
    with tempfile.TemporaryDirectory(prefix="clipmark-scale-") as folder:
        for n in sizes:
            run_size(args.db, n, Path(folder), decisions=args.decisions, dup_limit=args.dup_limit)
        if args.ray:
            from bench.scale_ray import compare_engines

            compare_engines(Path(folder), db=args.db, images=args.ray_images, arch=args.ray_model, actors=args.actors)


if __name__ == "__main__":
    main()
