"""What the jobs use case answers: a job's state at one moment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")

# A job's result: a JSON-ready document of what it did, by step ("import": an ImportSummary,
# "embed", "predict", "model_error", ...). Free-form, since every kind of job reports its own steps.
JobResult = Mapping[str, object]


@dataclass(frozen=True)
class JobStatus:
    """One background job. `status` is one of JOB_STATES; `done`/`total` the current stage's progress;
    `owner` who started it (None: the server itself); `cancel_requested` once someone asked to stop it."""

    job_id: str
    kind: str
    project: str
    owner: str | None
    status: str
    stage: str
    done: int
    total: int
    notes: tuple[str, ...]
    error: str | None
    result: JobResult | None
    created_at: float
    finished_at: float | None
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.status in FINISHED
