"""The Ray actor that runs Segment Anything's image encoder: one segmenter per actor. Rows (image_id,
path) in; (image_id, features float16 (1, C, h, w), original_size, input_size, error) out."""

from __future__ import annotations

import numpy as np

from core.errors import ImageError
from core.models.sam import Segmenter, SegmenterSpec
from core.usecases.distributed.reading import read_picture


class SamEncoder:
    """Callable class for `Dataset.map_batches(compute=ActorPoolStrategy(...))`."""

    def __init__(self, spec: SegmenterSpec, *, device: str | None, max_pixels: int) -> None:
        from core.models.sam import load_segmenter  # lazy: torch, in the actor process only

        self.segmenter: Segmenter = load_segmenter(spec, device=device)
        self.max_pixels = max_pixels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = np.asarray(batch["image_id"], dtype=np.int64)
        errors = np.full(len(ids), "", dtype=object)
        features: list[np.ndarray | None] = []
        sizes = np.zeros((len(ids), 4), dtype=np.int64)  # original (H, W), input (h, w)
        for k, path in enumerate(batch["path"]):
            try:
                embedding = self.segmenter.embed(np.asarray(read_picture(str(path), max_pixels=self.max_pixels)))
            except ImageError as exc:
                errors[k], embedding = exc.reason, None
            features.append(None if embedding is None else embedding.features)
            if embedding is not None:
                sizes[k] = (*embedding.original_size, *embedding.input_size)
        shape = next((f.shape for f in features if f is not None), (1, 1, 1, 1))
        stacked = np.stack([np.zeros(shape, np.float16) if f is None else f for f in features])
        return {"image_id": ids, "features": stacked, "sizes": sizes, "error": errors}
