"""Kill the server (SIGKILL) in the middle of a labeling run and start it again on the same store:
every decision the server acknowledged before it died is there. The client labels through the API
as fast as it can in a thread while the test kills the server under it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from gradio_client import Client
from sqlalchemy import select

from core.config import Settings
from core.models.tiny import TINY_NAME
from core.service import Service
from core.store.db import make_engine
from core.store.schema import CurrentLabel, Event
from tests.helpers import project_from_vectors
from tests.webapp.conftest import free_port
from tests.webapp.test_core_views import clustered

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["cat", "dog", "bird"]
BEFORE_KILL = 15  # acknowledged decisions before the kill


def start_server(db: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "core.cli", "serve", "--db", str(db), "--host", "127.0.0.1",
               "--port", str(port), "--model", TINY_NAME, "--pretrained", "none"]
    env = {**os.environ, "CLIPMARK_MEDIA": str(db.parent / "media"), "CLIPMARK_USER": "crash-tester",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_until_up(port: int, server: subprocess.Popen[bytes], log: Path, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited early:\n{log.read_text(errors='replace')[-2000:]}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"the server did not start:\n{log.read_text(errors='replace')[-2000:]}")


@contextlib.contextmanager
def server_on(db: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    server = start_server(db, port, log)
    try:
        wait_until_up(port, server, log)
        yield f"http://127.0.0.1:{port}/", server
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def label_until_failure(url: str, acked: list[tuple[int, int]], stop: threading.Event) -> None:
    """Decide (accept) item after item; record (event id, image id) of each acknowledged decision.
    Ends at the first failure: the server is gone."""
    client = Client(url, verbose=False, ssl_verify=False, httpx_kwargs={"timeout": 20})
    try:
        item = client.predict("crash", api_name="/next_item")["item"]
        while item is not None and not stop.is_set():
            answer = client.predict("crash", item["image_id"], "accept", "", api_name="/decide")
            acked.append((answer["decision"]["event_id"], answer["decision"]["image_id"]))
            item = answer["item"]
    except Exception:  # noqa: BLE001, S110  (the connection breaks when the server is killed: expected)
        pass


def stored(db: Path, event_ids: list[int]) -> tuple[set[int], set[int]]:
    """Which of these events are in the store, and which images have a current label."""
    engine = make_engine(str(db))
    try:
        with engine.connect() as conn:
            events = set(conn.scalars(select(Event.id).where(Event.id.in_(event_ids))))
            labeled = set(conn.scalars(select(CurrentLabel.image_id)))
    finally:
        engine.dispose()
    return events, labeled


def test_acknowledged_decisions_survive_a_sigkill(tmp_path: Path) -> None:
    db, log = tmp_path / "crash.sqlite", tmp_path / "server.log"
    service = Service(Settings(db=str(db), media_dir=tmp_path / "media", user="crash-tester"))
    emb, _, centres = clustered(300, len(CLASSES), seed=11)
    project_from_vectors(service, "crash", embeddings=emb, class_names=CLASSES, head=centres)
    service.close()

    acked: list[tuple[int, int]] = []
    stop = threading.Event()
    with server_on(db, log) as (url, server):
        labeler = threading.Thread(target=label_until_failure, args=(url, acked, stop), daemon=True)
        labeler.start()
        deadline = time.monotonic() + 30
        while len(acked) < BEFORE_KILL and labeler.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(acked) >= BEFORE_KILL, f"only {len(acked)} decisions in 30 s:\n{log.read_text()[-2000:]}"
        server.send_signal(signal.SIGKILL)  # mid-run: the labeler has a request in flight or about to be
        server.wait(timeout=10)
        labeler.join(timeout=30)
        stop.set()
    assert server.returncode == -signal.SIGKILL
    event_ids = [event_id for event_id, _ in acked]
    events, labeled = stored(db, event_ids)
    assert events == set(event_ids), f"acknowledged but lost: {sorted(set(event_ids) - events)}"
    assert {image_id for _, image_id in acked} <= labeled

    with server_on(db, log) as (url, _):  # the store opens again, and the app serves from it
        client = Client(url, verbose=False, ssl_verify=False, httpx_kwargs={"timeout": 20})
        after = client.predict("crash", api_name="/next_item")
        client.close()
    assert after["progress"]["labeled"] >= len(acked)
    assert after["item"]["image_id"] not in {image_id for _, image_id in acked}
