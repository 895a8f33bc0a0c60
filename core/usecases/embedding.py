"""The embedding use case: embed a project's images with a model (remembered for the project) and
store the current classifier's predictions as a prediction run."""

from __future__ import annotations

from core.errors import InvalidInput
from core.models.base import ModelSpec
from core.store import repo
from core.store.schema import Project
from core.usecases.context import Context
from core.usecases.labeling.states import ProjectStates
from core.usecases.models import ModelProvider
from core.usecases.scoring import EmbedSummary, PredictSummary, ProgressFn, embed_project


class Embedding:
    """Embed a project's images with a model (remembered for the project) and store predictions."""

    def __init__(self, context: Context, models: ModelProvider, states: ProjectStates) -> None:
        self.context = context
        self.models = models
        self.states = states

    def embed(self, project: str, *, spec: ModelSpec | None = None, annotator: str | None = None,
              progress: bool = True, on_progress: ProgressFn | None = None) -> EmbedSummary:
        with self.context.action(project, annotator=annotator, permission="manage_projects", write=False) as act:
            spec = spec or self.models.spec()
            project_id = act.project_id
        model = self.models.load(spec)
        with self.context.sessions.begin() as session:
            row = session.get(Project, project_id)
            assert row is not None
            row.model_arch, row.model_pretrained = spec.arch, spec.pretrained
            row.settings = {**(row.settings or {}), "model_config": spec.config, "model_id": model.model_id}
        try:
            s = self.context.settings
            return embed_project(self.context.sessions, model, project_id=project_id, batch_size=s.batch_size,
                                 num_workers=s.num_workers, max_pixels=s.max_pixels, progress=progress,
                                 on_progress=on_progress)
        finally:
            self.states.forget(project_id)

    def predict(self, project: str, *, annotator: str | None = None) -> PredictSummary:
        """Store pseudo-labels for every embedded image from the current classifier: zero-shot
        without labels, adapted once people have labeled."""
        with self.context.action(project, annotator=annotator, permission="manage_projects") as act:
            state = self.states.get(act.session, act.project, refresh=True)  # type: ignore[arg-type]
            if state.model_id is None or state.probs is None:
                raise InvalidInput(f"project '{project}' has no embeddings yet: run `clipmark embed` first")
            with state.lock:
                run = repo.add_prediction_run(
                    act.session, project_id=state.project_id, model_id=state.model_id,
                    model_version=state.classifier.version if state.classifier else "zero-shot",
                    prompts_hash=state.head_key, label_ids=state.label_ids, image_ids=state.image_ids,
                    probs=state.probs)
                return PredictSummary(run.id, len(state.image_ids), state.model_id, run.model_version,
                                      state.head_key)
