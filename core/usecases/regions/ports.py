"""What the regions use case needs from the rest of clipmark, as protocols: the facade injects them
(`Regions(context, classifier=..., thumbnails=..., jobs=..., model_id_of=...)`), so this package never imports
the service and tests can hand in small real parts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image as Picture


class CropClassifier(Protocol):
    """Scores region crops against a project's zero-shot text head (CLIP)."""

    def probs(self, project_id: int, pictures: Sequence[Picture.Image]) -> tuple[np.ndarray, list[int]]:
        """(N x K probabilities, the class ids of the K columns) for these crops. Raises
        core.errors.ModelLoadError when the project has no CLIP model or text head (or the model
        cannot be loaded): the caller then offers no class."""
        ...


class Thumbnails(Protocol):
    """The display copies of images (made once, shared with the web view)."""

    def path(self, *, sha256: str, file_path: str, size: int) -> Path:
        """A copy of the image whose longer side is at most `size` pixels (core.errors.ImageError
        when the file cannot be read)."""
        ...


class JobProgress(Protocol):
    """What a background job reports while it runs (core.jobs.Progress)."""

    def stage(self, name: str, *, total: int = 0) -> None: ...

    def __call__(self, done: int, total: int) -> None: ...


class SubmittedJob(Protocol):
    @property
    def job_id(self) -> str: ...


class Jobs(Protocol):
    """The background job queue (core.usecases.jobs.runner.JobRunner): propose-all and encode-all run there."""

    def submit(self, *, kind: str, project: str, work: Callable[[Any], dict[str, Any] | None],
               owner: str | None = None) -> SubmittedJob:
        """Queue `work(progress)` for `owner`; returns the job (its id is `job_id`)."""
        ...
