"""The embedding use case: embed a project's images with a model (remembered for the project) and
store the current classifier's predictions as a prediction run."""

from __future__ import annotations

from core.errors import InvalidInput
from core.models.base import ModelSpec
from core.store import repo
from core.store.schema import Project
from core.usecases.context import Context
from core.usecases.distributed.clip_job import embed_project_ray
from core.usecases.distributed.engine import RayOptions, check_engine
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
              progress: bool = True, on_progress: ProgressFn | None = None, engine: str | None = None,
              ray: RayOptions | None = None) -> EmbedSummary:
        """Embed what is not embedded yet. `engine`: 'local' (this process) or 'ray' (a pool of model
        actors on a Ray cluster); default: Ray when an engine address is configured, else local."""
        with self.context.action(project, annotator=annotator, permission="manage_projects", write=False) as act:
            spec = spec or self.models.spec()
            project_id = act.project_id
        s = self.context.settings
        engine = check_engine(engine or s.default_engine)
        model = self.models.load(spec) if engine == "local" else None
        self._remember(project_id, spec, spec.model_id if model is None else model.model_id)
        try:
            if model is None:
                return embed_project_ray(self.context.sessions, spec, project_id=project_id,
                                         options=ray or self.ray_options(), max_pixels=s.max_pixels,
                                         on_progress=on_progress)
            return embed_project(self.context.sessions, model, project_id=project_id, batch_size=s.batch_size,
                                 num_workers=s.num_workers, max_pixels=s.max_pixels, progress=progress,
                                 on_progress=on_progress)
        finally:
            self.states.forget(project_id)

    def ray_options(self) -> RayOptions:
        """The Ray job's options from the settings (engine address, actors, batch size, path map)."""
        s = self.context.settings
        return RayOptions(address=s.engine_address, actors=s.engine_actors, batch_size=s.batch_size,
                          path_map=s.engine_path_map)

    def _remember(self, project_id: int, spec: ModelSpec, model_id: str) -> None:
        with self.context.sessions.begin() as session:
            row = session.get(Project, project_id)
            assert row is not None
            row.model_arch, row.model_pretrained = spec.arch, spec.pretrained
            row.settings = {**(row.settings or {}), "model_config": spec.config, "model_id": model_id}

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
