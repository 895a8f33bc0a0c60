"""Background jobs (import, embedding, prediction, regions) with progress and cancel.

A `JobRunner` belongs to one Service instance (never module-level). A small pool of daemon worker
threads runs the queued jobs in order, at most one job per project at a time (so an import finishes
before its embedding starts, and two jobs never write the same project at once), while other projects'
jobs run beside it. Progress lives in memory next to the job: a page that reloads finds its jobs
again by listing them. Cancelling a queued job drops it; a running job is asked to stop
(`Progress.cancelled()`) and reports what it did."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import ClipmarkError, NotFound
from core.usecases.jobs.results import FINISHED, JobResult, JobStatus

log = logging.getLogger(__name__)

KEEP_FINISHED = 50
WORKERS = 2


@dataclass
class _Job:
    """A job's mutable record; only read or changed under the runner's lock."""

    id: str
    kind: str
    project: str
    owner: str | None
    work: Work
    status: str = "queued"
    stage: str = "queued"
    done: int = 0
    total: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    result: JobResult | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def snapshot(self) -> JobStatus:
        return JobStatus(job_id=self.id, kind=self.kind, project=self.project, owner=self.owner,
                         status=self.status, stage=self.stage, done=self.done, total=self.total,
                         notes=tuple(self.notes), error=self.error, result=self.result,
                         created_at=self.created_at, finished_at=self.finished_at,
                         cancel_requested=self.cancel.is_set())


class Progress:
    """Handed to the work function: `stage(name)`, `note(text)`, `cancelled()`, and callable as
    on_progress(done, total)."""

    def __init__(self, job: _Job, lock: threading.Condition) -> None:
        self._job = job
        self._lock = lock

    def stage(self, name: str, *, total: int = 0) -> None:
        with self._lock:
            self._job.stage, self._job.done, self._job.total = name, 0, total

    def note(self, text: str) -> None:
        with self._lock:
            self._job.notes.append(text)

    def cancelled(self) -> bool:
        """True once the owner or an admin asked to stop: stop between units of work and return."""
        return self._job.cancel.is_set()

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            self._job.done, self._job.total = int(done), int(total)


Work = Callable[[Progress], JobResult | None]


class JobRunner:
    """Runs submitted work on up to `workers` daemon threads, one job per project at a time; keeps
    the last `keep` finished jobs for display."""

    def __init__(self, *, workers: int = WORKERS, keep: int = KEEP_FINISHED) -> None:
        self._jobs: dict[str, _Job] = {}
        self._pending: list[_Job] = []
        self._busy: set[str] = set()
        self._lock = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._workers = max(1, workers)
        self._keep = keep

    def submit(self, *, kind: str, project: str, work: Work, owner: str | None = None) -> JobStatus:
        job = _Job(id=uuid.uuid4().hex[:12], kind=kind, project=project, owner=owner, work=work)
        with self._lock:
            self._jobs[job.id] = job
            self._pending.append(job)
            self._prune()
            self._start_worker()
            self._lock.notify_all()
            return job.snapshot()

    def get(self, job_id: str) -> JobStatus:
        with self._lock:
            return self._job(job_id).snapshot()

    def list(self, *, project: str | None = None) -> list[JobStatus]:
        """Newest first."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if project is None or j.project == project]
            return [j.snapshot() for j in sorted(jobs, key=lambda j: -j.created_at)]

    def cancel(self, job_id: str) -> JobStatus:
        """Drop a queued job; ask a running one to stop. A finished job is left as it is."""
        with self._lock:
            job = self._job(job_id)
            if job.status in FINISHED:
                return job.snapshot()
            job.cancel.set()
            if job.status == "queued":
                self._pending.remove(job)
                self._finish(job, status="cancelled", result=None, error=None)
            return job.snapshot()

    def wait(self, job_id: str, *, timeout: float) -> JobStatus:
        """Block until the job is finished (or `timeout` seconds pass); returns its state."""
        deadline = time.monotonic() + timeout
        with self._lock:
            job = self._job(job_id)
            while job.status not in FINISHED and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            return job.snapshot()

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise NotFound("job_id: no such job (it may have finished long ago, or it is not yours)")
        return job

    def _start_worker(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        if len(self._threads) < self._workers:
            thread = threading.Thread(target=self._run_forever, name="clipmark-jobs", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _next(self) -> _Job:
        """The oldest queued job whose project has no job running (waits for one)."""
        with self._lock:
            while True:
                job = next((j for j in self._pending if j.project not in self._busy), None)
                if job is not None:
                    self._pending.remove(job)
                    self._busy.add(job.project)
                    job.status, job.stage = "running", "starting"
                    return job
                self._lock.wait()

    def _run_forever(self) -> None:
        while True:
            self._run(self._next())

    def _run(self, job: _Job) -> None:
        result, error = None, None
        try:
            result = job.work(Progress(job, self._lock))
        except ClipmarkError as exc:
            error = str(exc)
        except Exception as exc:  # a background thread has no caller to raise to: record it
            log.exception("job %s (%s) failed", job.id, job.kind)
            error = f"internal error: {type(exc).__name__}: {exc}"
        with self._lock:
            self._busy.discard(job.project)
            status = "failed" if error else "cancelled" if job.cancel.is_set() else "done"
            self._finish(job, status=status, result=result, error=error)

    def _finish(self, job: _Job, *, status: str, result: JobResult | None, error: str | None) -> None:
        """Under the lock: record the outcome and wake whoever waits (for it, or for a free project)."""
        job.result, job.error, job.status, job.stage = result, error, status, status
        job.finished_at = time.time()
        self._lock.notify_all()

    def _prune(self) -> None:
        finished = sorted((j for j in self._jobs.values() if j.finished_at), key=lambda j: j.finished_at or 0.0)
        for job in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[job.id]
