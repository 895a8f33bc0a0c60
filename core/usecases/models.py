"""The image-text models of one Service: which model a project uses, each loaded once (under a lock),
and remembered loading failures so the app can say early why a model is missing."""

from __future__ import annotations

import threading

from core.config import Settings
from core.errors import InvalidInput, ModelLoadError
from core.models.base import ImageTextModel, ModelSpec
from core.store.schema import Project


class ModelProvider:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: dict[ModelSpec, ImageTextModel] = {}
        self._errors: dict[ModelSpec, str] = {}
        self._lock = threading.Lock()

    def spec(self, project: Project | None = None) -> ModelSpec:
        """The project's model (remembered when it was embedded), else the configured one."""
        if project is not None and project.model_arch:
            return ModelSpec(arch=project.model_arch, pretrained=project.model_pretrained,
                             config=(project.settings or {}).get("model_config"))
        s = self.settings
        return ModelSpec(arch=s.model, pretrained=s.pretrained, config=s.model_config)

    def load(self, spec: ModelSpec) -> ImageTextModel:
        from core.models.clip import load_image_text_model  # lazy: importing it imports torch

        with self._lock:
            if spec not in self._models:
                self._models[spec] = load_image_text_model(spec, device=self.settings.device)
            return self._models[spec]

    def for_embeddings(self, spec: ModelSpec, model_id: str) -> ImageTextModel:
        """The model that made `model_id` embeddings; a text head from any other model would not fit them."""
        if spec.model_id != model_id:
            raise ModelLoadError(f"the embeddings were made by {model_id}, the configured model is {spec.model_id}: "
                                 "embed again with the configured model to get a zero-shot head")
        return self.load(spec)

    def problem(self, spec: ModelSpec) -> str | None:
        """None when the model loads; else why not and how to fix it (failures are remembered)."""
        if spec not in self._errors:
            try:
                self.load(spec)
                return None
            except (ModelLoadError, InvalidInput) as exc:
                self._errors[spec] = str(exc)
        return self._errors[spec]

    def known_problem(self, spec: ModelSpec) -> str | None:
        """The remembered loading failure of this model, without trying to load it."""
        return self._errors.get(spec)
