"""Many annotators at once against one clipmark server: nothing lost, nothing handed out twice.

Usage: .venv/bin/python bench/team_load.py [--db sqlite|postgres] [--annotators 20] [--decisions 5000]
                                           [--deadline 400] [--images 8000] [--overlap 0.1]

A fresh store (a SQLite file, or a PostgreSQL server started on 127.0.0.1) gets a synthetic project
(`--images` L2-normalised embeddings, D=512, K=10 clustered classes, a text head near the class
centres; every image file is the same tiny JPEG), an admin and `--annotators` annotator users with
passwords, and `--overlap` of the items for two annotators each. One server (`clipmark serve`) runs
on 127.0.0.1 in a subprocess; every annotator is a separate process that logs in with its own
password through gradio_client and loops /decide (correct, or accept when the proposal is right)
as fast as it can, until it made its share of `--decisions` or the deadline passed.

Then it checks: decisions acknowledged = decision events stored (the same ids), no item labeled by
two annotators outside overlap (nor by more than its slots inside), every requested decision made,
no errors; prints p50/p95/p99 of the decision round trip; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROJECT, DIM, CLASSES, MODEL_ID = "team", 512, 10, "synthetic@team-bench"
LOOPBACK = "127.0.0.1"


# -- the store -----------------------------------------------------------------------------------


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings (n x D), true class per row, text head (K x D): clustered, the head near the centres."""
    centres = rng.standard_normal((CLASSES, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = rng.integers(0, CLASSES, size=n)
    emb = 0.6 * centres[truth] + 0.05 * rng.standard_normal((n, DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    head = centres + 0.8 * rng.standard_normal((CLASSES, DIM)).astype(np.float32) / np.sqrt(DIM)
    head /= np.linalg.norm(head, axis=1, keepdims=True)
    return emb.astype(np.float32), truth, head


def prepare(db: str, workdir: Path, *, images: int, annotators: int, overlap: float) -> dict[str, Any]:
    """Project, users and the answer key; returns what the workers and the checks need."""
    from sqlalchemy import insert, select

    from core.config import Settings
    from core.service import Service
    from core.store import repo
    from core.store.repo import ClassSpec
    from core.store.schema import Image
    from core.usecases.scoring import head_key

    picture = workdir / "picture.jpg"
    from PIL import Image as PILImage

    PILImage.new("RGB", (64, 48), (120, 160, 200)).save(picture)
    emb, truth, head = synthetic(images, np.random.default_rng(7))
    names = [f"class{k}" for k in range(CLASSES)]
    service = Service(Settings(db=db, media_dir=workdir / "media", user="admin"))
    try:
        service.projects.create(PROJECT, classes=[ClassSpec(c) for c in names])
        with service.context.sessions.begin() as session:
            project = repo.project_by_name(session, name=PROJECT)
            assert project is not None
            project.settings = {"model_id": MODEL_ID}
            session.execute(insert(Image), [
                {"project_id": project.id, "sha256": f"{k:064x}", "original_path": f"synthetic/{k}.jpg",
                 "file_path": str(picture), "width": 64, "height": 48, "format": "JPEG", "status": "ok"}
                for k in range(images)])
            ids = list(session.scalars(select(Image.id).where(Image.project_id == project.id)  # type: ignore[arg-type]
                                      .order_by(Image.id)))
            repo.add_embeddings(session, model_id=MODEL_ID, image_ids=ids, vectors=emb)
            classes = repo.classes_of(session, project_id=project.id)
            repo.save_text_head(session, project_id=project.id, model_id=MODEL_ID, prompts_hash=head_key(classes),
                                label_ids=[c.id for c in classes], vectors=head, logit_scale=100.0)
            project_id = project.id
        users = {f"ann{k:02d}": f"pw-ann{k:02d}-{os.getpid()}" for k in range(1, annotators + 1)}
        admin = ("admin", f"pw-admin-{os.getpid()}")
        service.team.add_user(admin[0], role="admin", password=admin[1])
        for name, password in users.items():
            service.team.add_user(name, role="annotator", password=password, annotator="admin")
        service.team.set_overlap(PROJECT, share=overlap, annotators=2, annotator="admin")
    finally:
        service.close()
    answers = workdir / "answers.json"
    answers.write_text(json.dumps({str(i): names[t] for i, t in zip(ids, truth, strict=True)}))
    return {"project_id": project_id, "users": users, "admin": admin, "answers": answers}


# -- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def start_server(db: str, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """`clipmark serve` on 127.0.0.1 (tiny random-weights model: the project's head is stored)."""
    command = [sys.executable, "-m", "core.cli", "serve", "--db", db, "--host", LOOPBACK, "--port", str(port),
               "--model", "clipmark-tiny", "--pretrained", "none"]
    env = {**os.environ, "CLIPMARK_MEDIA": str(workdir / "media"), "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(workdir / "server.log", "wb")  # noqa: SIM115  (kept open for the server's lifetime)
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_up(port: int, server: subprocess.Popen[bytes], *, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://{LOOPBACK}:{port}/", timeout=2).status_code < 500:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer on port {port} within {timeout:.0f} s")


def wait_for_jobs(url: str, admin: tuple[str, str], *, timeout: float = 180.0) -> None:
    """Let the server's start-up jobs (the model check) finish, so the labeling runs in steady state."""
    from gradio_client import Client

    client = Client(url, auth=admin, verbose=False, ssl_verify=False, httpx_kwargs={"timeout": 60})
    deadline = time.monotonic() + timeout
    while any(j["status"] in ("queued", "running") for j in client.predict("", api_name="/jobs")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server's start-up jobs did not finish within {timeout:.0f} s")
        time.sleep(0.5)
    client.close()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far, from /proc (NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- one annotator (a separate process) ----------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    """Log in, then decide as fast as possible until the quota is made or the deadline passes."""
    from gradio_client import Client

    answers: dict[str, str] = json.loads(Path(args.answers).read_text())
    out: dict[str, Any] = {"user": args.user, "acked": [], "latency": [], "errors": []}
    try:
        # plain http on loopback: no CA bundle to load for each request (gradio_client makes one per call)
        client = Client(args.url, auth=(args.user, args.password), verbose=False, ssl_verify=False,
                        httpx_kwargs={"timeout": 120})
        item = client.predict(PROJECT, api_name="/next_item")["item"]
        while item is not None and len(out["acked"]) < args.quota and time.time() < args.until:
            item = decide_one(client, item, answers, out)
        client.close()
    except Exception as exc:  # noqa: BLE001  (a dead worker is a finding: reported, not hidden)
        out["errors"].append(f"{args.user}: {type(exc).__name__}: {exc}")
    Path(args.out).write_text(json.dumps(out))


def decide_one(client: Any, item: dict[str, Any], answers: dict[str, str], out: dict[str, Any]) -> Any:
    """One decision: accept when the proposal is right, else correct to the true class; the next item."""
    truth = answers[str(item["image_id"])]
    proposal = item["top"][0]["label"] if item["top"] else None
    action, label = ("accept", "") if proposal == truth else ("correct", truth)
    began = time.perf_counter()
    try:
        answer = client.predict(PROJECT, item["image_id"], action, label, api_name="/decide")
    except Exception as exc:  # noqa: BLE001  (AppError, or the connection itself)
        out["errors"].append(f"{out['user']} #{item['image_id']}: {type(exc).__name__}: {exc}")
        return client.predict(PROJECT, api_name="/next_item")["item"]
    out["latency"].append(time.perf_counter() - began)
    out["acked"].append(answer["decision"]["event_id"])
    return answer["item"]


def run_workers(url: str, prepared: dict[str, Any], workdir: Path, *, decisions: int, until: float
                ) -> list[dict[str, Any]]:
    users = prepared["users"]
    quota = -(-decisions // len(users))
    procs = []
    for name, password in users.items():
        command = [sys.executable, __file__, "--worker", "--url", url, "--user", name, "--password", password,
                   "--answers", str(prepared["answers"]), "--quota", str(quota), "--until", str(until),
                   "--out", str(workdir / f"{name}.json")]
        procs.append((name, subprocess.Popen(command, cwd=ROOT)))
    results = []
    for name, proc in procs:
        try:
            proc.wait(timeout=max(until - time.time(), 0) + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        path = workdir / f"{name}.json"
        missing = {"user": name, "acked": [], "latency": [], "errors": [f"{name}: no result (exit {proc.returncode})"]}
        results.append(json.loads(path.read_text()) if path.is_file() else missing)
    return results


# -- the checks ----------------------------------------------------------------------------------


def stored_decisions(db: str, project_id: int, users: list[str]
                     ) -> tuple[set[int], dict[int, set[str]], dict[str, Any]]:
    """Decision event ids of these users, who labeled each image, and the overlap setting."""
    from sqlalchemy import select

    from core.store.db import make_engine
    from core.store.schema import Event, Project, User

    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            names = dict(conn.execute(select(User.id, User.name).where(User.name.in_(users))).all())
            rows = conn.execute(select(Event.id, Event.image_id, Event.annotator_id, Event.action).where(
                Event.project_id == project_id, Event.annotator_id.in_(list(names)))).all()
            settings = conn.execute(select(Project.settings).where(Project.id == project_id)).scalar_one()
    finally:
        engine.dispose()
    ids = {r.id for r in rows if r.action in ("accept", "correct", "skip")}
    labelers: dict[int, set[str]] = defaultdict(set)
    for r in rows:
        if r.action in ("accept", "correct"):
            labelers[r.image_id].add(names[r.annotator_id])
    return ids, labelers, settings or {}


def check(db: str, prepared: dict[str, Any], results: list[dict[str, Any]], *, decisions: int,
          elapsed: float, server_cpu: float) -> bool:
    from core.usecases.team.leases import overlap_slots

    acked = [e for r in results for e in r["acked"]]
    stored, labelers, settings = stored_decisions(db, prepared["project_id"], list(prepared["users"]))
    share, per_item = float(settings.get("overlap", 0.0)), int(settings.get("overlap_annotators", 2))
    slots = {i: overlap_slots(project_id=prepared["project_id"], image_id=i, share=share, annotators=per_item)
             for i in labelers}
    outside = sum(1 for i, who in labelers.items() if len(who) > 1 and slots[i] == 1)
    over = sum(1 for i, who in labelers.items() if len(who) > slots[i])
    shared = sum(1 for i, who in labelers.items() if len(who) > 1 and slots[i] > 1)
    errors = [e for r in results for e in r["errors"]]
    ms = 1000 * np.asarray([t for r in results for t in r["latency"]] or [np.nan])
    rows = [
        ("decisions acknowledged", f"{len(acked):,}", len(acked) >= decisions),
        ("decision events stored", f"{len(stored):,}", len(stored) == len(acked) and stored == set(acked)),
        ("acknowledged but not stored", f"{len(set(acked) - stored):,}", not set(acked) - stored),
        ("stored but not acknowledged", f"{len(stored - set(acked)):,}", not stored - set(acked)),
        ("labeled twice outside overlap", f"{outside:,}", outside == 0),
        ("labeled by more than its slots", f"{over:,}", over == 0),
        ("overlap items with 2 opinions", f"{shared:,}", True),
        ("errors", f"{len(errors):,}", not errors),
        ("throughput", f"{len(acked) / elapsed:,.1f} decisions/s over {elapsed:.1f} s", True),
        ("server CPU per decision", f"{1000 * server_cpu / max(len(acked), 1):,.0f} ms (all its threads)", True),
        ("latency p50 / p95 / p99", " / ".join(f"{np.nanpercentile(ms, q):,.0f}" for q in (50, 95, 99)) + " ms", True),
    ]
    width = max(len(name) for name, _, _ in rows)
    for name, value, ok in rows:
        print(f"  {name:<{width}}  {value:<40} {'ok' if ok else 'FAIL'}")
    for line in errors[:5]:
        print(f"  error: {line[:300]}")
    return all(ok for _, _, ok in rows)


# -- main ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def database(kind: str, workdir: Path):  # type: ignore[no-untyped-def]
    if kind == "sqlite":
        yield str(workdir / "team.sqlite")
        return
    from tests.pg import available, postgres_server

    problem = available()
    if problem:
        raise SystemExit(f"--db postgres: {problem}")
    with postgres_server() as url:
        yield url


def run(args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="clipmark-team-") as folder, database(args.db, Path(folder)) as db:
        workdir = Path(folder)
        began = time.perf_counter()
        prepared = prepare(db, workdir, images=args.images, annotators=args.annotators, overlap=args.overlap)
        port = free_port()
        server = start_server(db, workdir, port)
        try:
            url = f"http://{LOOPBACK}:{port}/"
            wait_until_up(port, server)
            wait_for_jobs(url, prepared["admin"])
            ready = time.perf_counter()
            print(f"{args.db}: {args.images:,} images, {args.annotators} annotators, overlap {args.overlap:.0%}; "
                  f"store and server ready in {ready - began:.1f} s; {os.cpu_count()} CPUs", flush=True)
            until, cpu = time.time() + args.deadline, cpu_seconds(server.pid)
            results = run_workers(url, prepared, workdir, decisions=args.decisions, until=until)
            elapsed, cpu = time.perf_counter() - ready, cpu_seconds(server.pid) - cpu
        finally:
            stop(server)
        ok = check(db, prepared, results, decisions=args.decisions, elapsed=elapsed, server_cpu=cpu)
        if not ok:
            print("server log (tail):\n" + (workdir / "server.log").read_text(errors="replace")[-3000:])
        return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--decisions", type=int, default=5000, help="in total, split evenly")
    parser.add_argument("--deadline", type=float, default=400.0, help="seconds of labeling at most")
    parser.add_argument("--images", type=int, default=8000)
    parser.add_argument("--overlap", type=float, default=0.1, help="share of items for two annotators")
    for hidden in ("--url", "--user", "--password", "--answers", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--quota", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--until", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.annotators < 1 or args.decisions < 1 or args.deadline <= 0:
        parser.error("--annotators, --decisions and --deadline must be positive")
    return 0 if run(args) else 1


if __name__ == "__main__":
    sys.exit(main())
