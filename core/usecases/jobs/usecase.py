"""The jobs use case: import, embed, predict and model checks run in the background (a small pool,
one job per project at a time), so the web app answers at once and shows their progress.

A job belongs to the person who started it: they and admins see it, wait for it and cancel it;
anyone else is told there is no such job. `annotator=None` is the trusted local caller (the CLI),
who sees every job."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from core.config import parse_pretrained
from core.errors import ClipmarkError, InvalidInput, NotFound
from core.models.base import ModelSpec
from core.usecases.context import Context
from core.usecases.embedding import Embedding
from core.usecases.importing import Importing
from core.usecases.importing.importer import ImportRequest
from core.usecases.jobs.results import JobResult, JobStatus
from core.usecases.jobs.runner import Progress
from core.usecases.jobs.workspace import Workspace
from core.usecases.models import ModelProvider
from core.usecases.scoring import PredictSummary

MAX_UPLOADS = 1000


class Jobs:
    def __init__(self, context: Context, *, models: ModelProvider, importing: Importing, embedding: Embedding,
                 workspace: Workspace, predict_exported: Callable[[str], PredictSummary] | None = None) -> None:
        """`predict_exported`: scores a project with the classifier exported from it (`clipmark
        set-classifier`), so a second batch is labeled with the model the first one produced."""
        self.context = context
        self.models = models
        self.importing = importing
        self.embedding = embedding
        self.workspace = workspace
        self.predict_exported = predict_exported

    def list(self, project: str | None = None, *, annotator: str | None = None) -> list[JobStatus]:
        """The jobs `annotator` may see (their own; every job for admins), newest first."""
        viewer = self._viewer(annotator)
        return [j for j in self.workspace.jobs.list(project=project) if self._visible(j, viewer)]

    def get(self, job_id: str, *, annotator: str | None = None) -> JobStatus:
        return self._checked(job_id, annotator)

    def wait(self, job_id: str, *, timeout: float = 600.0, annotator: str | None = None) -> JobStatus:
        self._checked(job_id, annotator)
        return self.workspace.jobs.wait(job_id, timeout=timeout)

    def cancel(self, job_id: str, *, annotator: str | None = None) -> JobStatus:
        """Stop a job (its owner or an admin): a queued one never runs; a running import stops between
        files and reports what it imported."""
        self._checked(job_id, annotator)
        return self.workspace.jobs.cancel(job_id)

    def start_import(self, project: str, paths: Sequence[str | Path], *, labels_from: str | None = None,
                     annotator: str | None = None, embed: bool = True,
                     uploaded_to: Path | None = None) -> JobStatus:
        """Import in the background, then embed and predict with the project's model. `uploaded_to`:
        `paths` are browser uploads, accepted only from inside that folder (the web server's upload
        folder) and copied into the media folder first; otherwise they are server paths."""
        if uploaded_to is not None:
            self.importing.authorize(project, annotator=annotator)  # before any byte is copied
            paths = self.workspace.stage_uploads(paths, uploaded_to=uploaded_to, maximum=MAX_UPLOADS)
        request = self.importing.prepare(project, paths, labels_from=labels_from, annotator=annotator,
                                         staged=uploaded_to is not None)

        def work(progress: Progress) -> JobResult:
            return self._import(project, request, progress, embed=embed)

        return self.workspace.jobs.submit(kind="import", project=project, work=work, owner=annotator)

    def start_embed(self, project: str, *, arch: str | None = None, pretrained: str | None = None,
                    annotator: str | None = None) -> JobStatus:
        """Embed (with this model, remembered for the project) and predict, in the background."""
        with self.context.action(project, annotator=annotator, permission="manage_projects", write=False) as act:
            spec = self.models.spec(act.project)
        if arch or pretrained is not None:
            spec = ModelSpec(arch=(arch or spec.arch).strip(), pretrained=parse_pretrained(pretrained))
            if spec.source == "file":  # a checkpoint on the server: for a web caller, inside the import roots
                checked = self.importing.roots(annotator).check(str(spec.pretrained), field="pretrained")
                spec = ModelSpec(arch=spec.arch, pretrained=str(checked))
        return self.workspace.jobs.submit(kind="embed", project=project, owner=annotator,
                                          work=lambda progress: self._embed_and_predict(project, progress, spec))

    def start_predict(self, project: str, *, annotator: str | None = None) -> JobStatus:
        with self.context.action(project, annotator=annotator, permission="manage_projects", write=False):
            pass

        def work(progress: Progress) -> JobResult:
            progress.stage("predict")
            return {"predict": self.embedding.predict(project).as_dict()}

        return self.workspace.jobs.submit(kind="predict", project=project, work=work, owner=annotator)

    def start_model_check(self, project: str | None = None) -> JobStatus:
        """Load the model in the background, so the app can say early why it cannot (a server job:
        admins see it)."""
        def work(progress: Progress) -> JobResult:
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

    def _import(self, project: str, request: ImportRequest, progress: Progress, *, embed: bool) -> JobResult:
        progress.stage("import")
        summary = self.importing.run(request, on_progress=progress, cancelled=progress.cancelled)
        if summary.cancelled or progress.cancelled() or not embed:
            return {"import": summary}
        return {"import": summary, **self._embed_and_predict(project, progress)}

    def _embed_and_predict(self, project: str, progress: Progress, spec: ModelSpec | None = None) -> JobResult:
        spec = spec or self._spec(project)
        problem = self.models.problem(spec)
        if problem:
            progress.note(f"model not loaded, label by hand meanwhile: {problem}")
            return {"model_error": problem}
        progress.stage("embed")
        embedded = self.embedding.embed(project, spec=spec, progress=False, on_progress=progress).as_dict()
        if (not embedded["computed"] and not embedded["cached"]) or progress.cancelled():
            return {"embed": embedded}
        progress.stage("predict")
        result = {"embed": embedded, "predict": self.embedding.predict(project).as_dict()}
        if self.predict_exported is not None and self._classifier_dir(project):
            progress.stage("exported classifier")
            try:
                result["exported"] = self.predict_exported(project).as_dict()
            except ClipmarkError as exc:  # e.g. the classes changed since it was trained: the import stands
                progress.note(f"the project's exported classifier was not run: {exc}")
                result["exported"] = {"error": str(exc)}
        return result

    def _classifier_dir(self, project: str) -> str | None:
        with self.context.read_sessions.begin() as session:
            return (self.context.project(session, project).settings or {}).get("classifier_dir")

    # -- who sees which job ------------------------------------------------------------------------

    def _viewer(self, annotator: str | None) -> tuple[str, bool] | None:
        """(name, is admin) of a named viewer; None for the local operator (sees everything)."""
        if annotator is None:
            return None
        with self.context.action(None, annotator=annotator, permission="label", write=False) as act:
            return act.annotator.name, act.annotator.role == "admin"

    @staticmethod
    def _visible(job: JobStatus, viewer: tuple[str, bool] | None) -> bool:
        return viewer is None or viewer[1] or (job.owner is not None and job.owner == viewer[0])

    def _checked(self, job_id: str, annotator: str | None) -> JobStatus:
        """The job, if `annotator` may see it; the same NotFound as a missing job otherwise."""
        if not isinstance(job_id, str) or not job_id.strip():
            raise InvalidInput("job_id: give the id of a job (from /jobs or the job a call started)")
        job = self.workspace.jobs.get(job_id.strip())
        if not self._visible(job, self._viewer(annotator)):
            raise NotFound("job_id: no such job (it may have finished long ago, or it is not yours)")
        return job
