"""The Ray actor that embeds images with CLIP: one model per actor, loaded once in its constructor.
A batch of rows (image_id, path) comes in; (image_id, vector float16, error) goes out, one row per
input row ('' = no error; a failed row's vector is zeros and is not stored)."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.errors import ImageError
from core.models.base import ImageTextModel, ModelSpec
from core.usecases.distributed.reading import read_picture

PREPROCESS_ERRORS = (OSError, ValueError, RuntimeError, TypeError)


class ClipEmbedder:
    """Callable class for `Dataset.map_batches(compute=ActorPoolStrategy(...))`."""

    def __init__(self, spec: ModelSpec, *, device: str | None, max_pixels: int) -> None:
        from core.models.clip import load_image_text_model  # lazy: torch, in the actor process only

        self.model: ImageTextModel = load_image_text_model(spec, device=device)
        self.max_pixels = max_pixels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = np.asarray(batch["image_id"], dtype=np.int64)
        errors = np.full(len(ids), "", dtype=object)
        pictures, good = [], []
        for k, path in enumerate(batch["path"]):
            try:
                pictures.append(read_picture(str(path), max_pixels=self.max_pixels))
                good.append(k)
            except ImageError as exc:
                errors[k] = exc.reason
        vectors = np.zeros((len(ids), self.model.embed_dim), dtype=np.float16)
        if pictures:
            vectors[good] = self.encode(pictures, errors, good).astype(np.float16)
        return {"image_id": ids, "vector": vectors, "error": errors}

    def encode(self, pictures: list[Any], errors: np.ndarray, positions: list[int]) -> np.ndarray:
        """(N, D) float32 for the decoded pictures; one that fails preprocessing is an error row."""
        try:
            return self.model.encode_pictures(pictures)
        except PREPROCESS_ERRORS:
            out = np.zeros((len(pictures), self.model.embed_dim), dtype=np.float32)
            for k, picture in enumerate(pictures):
                try:
                    out[k] = self.model.encode_pictures([picture])[0]
                except PREPROCESS_ERRORS as exc:
                    errors[positions[k]] = f"cannot preprocess: {exc}"
            return out
