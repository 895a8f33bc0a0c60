"""Background jobs (import, embedding, prediction) with progress.

A `JobRunner` belongs to one Service instance (never module-level). Jobs run one at a time on a
daemon worker thread, so an import finishes before its embedding starts. Progress lives in memory
next to the job: a page that reloads finds its jobs again by listing them."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import ClipmarkError, NotFound

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "failed")
KEEP_FINISHED = 50


@dataclass
class Job:
    id: str
    kind: str
    project: str
    status: str = "queued"
    stage: str = "queued"
    done: int = 0
    total: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    result: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.id, "kind": self.kind, "project": self.project, "status": self.status,
                "stage": self.stage, "done": self.done, "total": self.total, "notes": list(self.notes),
                "error": self.error, "result": self.result, "created_at": self.created_at,
                "finished_at": self.finished_at}


class Progress:
    """Handed to the work function: `stage(name)`, `note(text)`, and callable as on_progress(done, total)."""

    def __init__(self, job: Job, lock: threading.Lock) -> None:
        self._job = job
        self._lock = lock

    def stage(self, name: str, *, total: int = 0) -> None:
        with self._lock:
            self._job.stage, self._job.done, self._job.total = name, 0, total

    def note(self, text: str) -> None:
        with self._lock:
            self._job.notes.append(text)

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            self._job.done, self._job.total = int(done), int(total)


Work = Callable[[Progress], dict[str, Any] | None]


class JobRunner:
    """Runs submitted work in order on one daemon thread; keeps the last finished jobs for display."""

    def __init__(self, *, keep: int = KEEP_FINISHED) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Job, Work]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._finished = threading.Condition(self._lock)
        self._keep = keep

    def submit(self, *, kind: str, project: str, work: Work) -> dict[str, Any]:
        job = Job(id=uuid.uuid4().hex[:12], kind=kind, project=project)
        with self._lock:
            self._jobs[job.id] = job
            self._prune()
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run_forever, name="clipmark-jobs", daemon=True)
                self._worker.start()
        self._queue.put((job, work))
        return job.as_dict()

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            if job_id not in self._jobs:
                raise NotFound(f"job_id: no job '{job_id}' (it may have finished long ago)")
            return self._jobs[job_id].as_dict()

    def list(self, *, project: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if project is None or j.project == project]
            return [j.as_dict() for j in sorted(jobs, key=lambda j: -j.created_at)]

    def wait(self, job_id: str, *, timeout: float) -> dict[str, Any]:
        """Block until the job is done or failed (or `timeout` seconds pass); returns its state."""
        deadline = time.monotonic() + timeout
        with self._finished:
            while self._jobs[job_id].status in ("queued", "running"):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._finished.wait(left)
            return self._jobs[job_id].as_dict()

    def _run_forever(self) -> None:
        while True:
            job, work = self._queue.get()
            self._run(job, work)

    def _run(self, job: Job, work: Work) -> None:
        with self._lock:
            job.status, job.stage = "running", "starting"
        result, error = None, None
        try:
            result = work(Progress(job, self._lock))
        except ClipmarkError as exc:
            error = str(exc)
        except Exception as exc:  # a background thread has no caller to raise to: record it
            log.exception("job %s (%s) failed", job.id, job.kind)
            error = f"internal error: {type(exc).__name__}: {exc}"
        with self._finished:
            job.result, job.error = result, error
            job.status = "failed" if error else "done"
            job.stage = job.status
            job.finished_at = time.time()
            self._finished.notify_all()

    def _prune(self) -> None:
        finished = sorted((j for j in self._jobs.values() if j.finished_at), key=lambda j: j.finished_at or 0.0)
        for job in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[job.id]
