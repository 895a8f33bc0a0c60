"""Region crops scored like whole images: the project's CLIP model (the one that made its
embeddings) encodes them and its live zero-shot text head scores them. The regions use case gets
this as its CropClassifier (core.usecases.regions.ports)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image as Picture

from core.errors import ModelLoadError, NotFound
from core.store.schema import Project
from core.usecases.context import Context
from core.usecases.labeling.states import ProjectStates
from core.usecases.models import ModelProvider


class StateCropClassifier:
    def __init__(self, context: Context, models: ModelProvider, states: ProjectStates) -> None:
        self.context = context
        self.models = models
        self.states = states

    def probs(self, project_id: int, pictures: Sequence[Picture.Image]) -> tuple[np.ndarray, list[int]]:
        """(N x K probabilities, the class ids of the K columns); ModelLoadError without a model or head."""
        with self.context.read_sessions.begin() as session:
            row = session.get(Project, project_id)
            if row is None:
                raise NotFound(f"project: no project #{project_id}")
            name, spec, state = row.name, self.models.spec(row), self.states.get(session, row)
        with state.lock:
            head, scale, label_ids, model_id = state.head, state.logit_scale, list(state.label_ids), state.model_id
        if head is None or model_id is None:
            raise ModelLoadError(f"project '{name}' has no CLIP embeddings or text head yet: embed it first")
        features = self.models.for_embeddings(spec, model_id).encode_pictures(pictures)
        logits = scale * features @ head.T
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True), label_ids
