"""Compute Segment Anything image embeddings ahead of a labeling session (`clipmark sam-embed`,
the web app's "Prepare every image" button), so that no first click waits for the encoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.errors import ImageError, NotFound
from core.usecases.regions.results import EmbedReport
from core.usecases.regions.runtime import SamRuntime, image_info


def embed_all(runtime: SamRuntime, project: str, image_ids: Sequence[int], *, annotator: str | None = None,
              on_progress: Callable[[int, int], None] | None = None) -> EmbedReport:
    """Embed these images unless cached; bad images are reported, the rest go on."""
    segmenter = runtime.segmenter()
    computed, cached, errors = 0, 0, []
    for done, image_id in enumerate(image_ids, start=1):
        try:
            with runtime.context.action(project, annotator=annotator, permission="label", write=False) as action:
                image = image_info(action, image_id)
            if runtime.cache.contains(segmenter.model_id, image.sha256):
                cached += 1
            else:
                runtime.embedding(image)
                computed += 1
        except (ImageError, NotFound) as exc:
            errors.append({"file": f"image #{image_id}", "reason": str(exc)})
        if on_progress is not None:
            on_progress(done, len(image_ids))
    return EmbedReport(images=len(image_ids), computed=computed, cached=cached, errors=tuple(errors),
                       model_id=segmenter.model_id)
