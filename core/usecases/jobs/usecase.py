"""The jobs use case: import, embed, predict and model checks run in the background (one worker
thread), so the web app answers at once and shows their progress."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.models.base import ModelSpec, parse_pretrained
from core.usecases.context import Context
from core.usecases.embedding import Embedding
from core.usecases.importing import Importing
from core.usecases.importing.importer import check_labels_from
from core.usecases.jobs.runner import Progress
from core.usecases.jobs.workspace import Workspace
from core.usecases.models import ModelProvider

JobInfo = dict[str, Any]


class Jobs:
    def __init__(self, context: Context, *, models: ModelProvider, importing: Importing, embedding: Embedding,
                 workspace: Workspace) -> None:
        self.context = context
        self.models = models
        self.importing = importing
        self.embedding = embedding
        self.workspace = workspace

    def list(self, project: str | None = None) -> list[JobInfo]:
        return self.workspace.jobs.list(project=project)

    def get(self, job_id: str) -> JobInfo:
        return self.workspace.jobs.get(job_id)

    def wait(self, job_id: str, *, timeout: float = 600.0) -> JobInfo:
        return self.workspace.jobs.wait(job_id, timeout=timeout)

    def start_import(self, project: str, paths: Sequence[str | Path], *, labels_from: str | None = None,
                     annotator: str | None = None, embed: bool = True, uploaded: bool = False) -> JobInfo:
        """Import in the background, then embed and predict with the project's model."""
        if not paths:
            raise InvalidInput("paths: give at least one folder, zip file or image file")
        with self.context.action(project, annotator=annotator, permission="manage_projects", write=False):
            pass
        staged: list[str | Path] = list(self.workspace.stage_uploads(paths) if uploaded else paths)
        check_labels_from(labels_from)

        def work(progress: Progress) -> dict[str, Any]:
            progress.stage("import")
            summary = self.importing.images(project, staged, labels_from=labels_from, annotator=annotator,
                                            progress=False, on_progress=progress)
            return {"import": summary.as_dict(), **(self._embed_and_predict(project, progress) if embed else {})}

        return self.workspace.jobs.submit(kind="import", project=project, work=work)

    def start_embed(self, project: str, *, arch: str | None = None, pretrained: str | None = None,
                    annotator: str | None = None) -> JobInfo:
        """Embed (with this model, remembered for the project) and predict, in the background."""
        with self.context.action(project, annotator=annotator, permission="manage_projects", write=False) as act:
            spec = self.models.spec(act.project)
        if arch or pretrained is not None:
            spec = ModelSpec(arch=(arch or spec.arch).strip(), pretrained=parse_pretrained(pretrained))
        return self.workspace.jobs.submit(kind="embed", project=project,
                                          work=lambda progress: self._embed_and_predict(project, progress, spec))

    def start_predict(self, project: str, *, annotator: str | None = None) -> JobInfo:
        with self.context.action(project, annotator=annotator, permission="manage_projects", write=False):
            pass

        def work(progress: Progress) -> dict[str, Any]:
            progress.stage("predict")
            return {"predict": self.embedding.predict(project).as_dict()}

        return self.workspace.jobs.submit(kind="predict", project=project, work=work)

    def start_model_check(self, project: str | None = None) -> JobInfo:
        """Load the model in the background, so the app can say early why it cannot."""
        def work(progress: Progress) -> dict[str, Any]:
            progress.stage("load model")
            problem = self.model_problem(project)
            if problem:
                progress.note(f"model not loaded, label by hand meanwhile: {problem}")
            return {"model_error": problem}

        return self.workspace.jobs.submit(kind="model check", project=project or "", work=work)

    def model_problem(self, project: str | None = None) -> str | None:
        """None when the project's model loads; else why not and how to fix it (remembered)."""
        return self.models.problem(self._spec(project))

    def known_model_problem(self, project: str | None = None) -> str | None:
        """The remembered loading failure of the project's model, without trying to load it."""
        return self.models.known_problem(self._spec(project))

    def _spec(self, project: str | None) -> ModelSpec:
        with self.context.read_sessions.begin() as session:
            return self.models.spec(self.context.project(session, project) if project else None)

    def _embed_and_predict(self, project: str, progress: Progress, spec: ModelSpec | None = None) -> dict[str, Any]:
        spec = spec or self._spec(project)
        problem = self.models.problem(spec)
        if problem:
            progress.note(f"model not loaded, label by hand meanwhile: {problem}")
            return {"model_error": problem}
        progress.stage("embed")
        embedded = self.embedding.embed(project, spec=spec, progress=False, on_progress=progress).as_dict()
        if not embedded["computed"] and not embedded["cached"]:
            return {"embed": embedded}
        progress.stage("predict")
        return {"embed": embedded, "predict": self.embedding.predict(project).as_dict()}
