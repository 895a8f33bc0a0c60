"""`clipmark sam-embed --engine ray`: the Segment Anything embeddings of a project's images that are not
cached yet, computed by a pool of segmenter actors; the driver writes each into the on-disk cache
(core.segment.cache, atomic per file) as it streams back, so a stopped job resumes by skipping what is
cached."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from core.errors import ModelLoadError
from core.models.sam import ImageEmbedding, SegmenterSpec
from core.segment.cache import EmbeddingCache
from core.store.schema import Image
from core.usecases.context import Context
from core.usecases.distributed.engine import RayOptions, actor_resources, connect, map_paths, rows_dataset
from core.usecases.distributed.roster import enrolled, job_actors
from core.usecases.distributed.sam_actor import SamEncoder
from core.usecases.regions.results import EmbedReport

IMAGES_PER_CALL = 2  # SAM encodes one image at a time; a small batch keeps results streaming


def sam_embed_ray(
    context: Context, cache: EmbeddingCache, spec: SegmenterSpec, *, project: str, image_ids: Sequence[int] | None,
    options: RayOptions, on_progress: Callable[[int, int], None] | None = None, actor: type = SamEncoder,
) -> EmbedReport:
    """Cache the SAM embedding of every usable image of `project` (or these) that has none yet, on Ray."""
    todo, total = _todo(context, cache, spec.model_id, project=project, image_ids=image_ids)
    tally = _Tally()
    if todo:
        ray = connect(options)
        shas = {image_id: sha for image_id, sha, _ in todo}
        try:
            with job_actors(ray) as roster:
                for batch in _encoded(ray, todo, spec, options=options, max_pixels=context.settings.max_pixels,
                                      actor=actor, roster=roster):
                    tally.keep(cache, spec.model_id, batch, shas=shas)
                    if on_progress:
                        on_progress(tally.computed + len(tally.errors), len(todo))
        except ray.exceptions.RayError as exc:
            raise ModelLoadError(f"SAM embedding on Ray stopped after {tally.computed} images ({exc}); "
                                 "what was cached is kept: run the same command again to resume") from exc
    return EmbedReport(images=total, computed=tally.computed, cached=total - len(todo), errors=tuple(tally.errors),
                       model_id=spec.model_id)


def _todo(context: Context, cache: EmbeddingCache, model_id: str, *, project: str,
          image_ids: Sequence[int] | None) -> tuple[list[tuple[int, str, str]], int]:
    """(image_id, sha256, file) of the usable images without a cached embedding; and how many were asked."""
    with context.action(project, annotator=None, permission="label", write=False) as action:
        query = select(Image.id, Image.sha256, Image.file_path).where(
            Image.project_id == action.project_id, Image.status == "ok", Image.sha256.is_not(None),
            Image.file_path.is_not(None))
        if image_ids:
            query = query.where(Image.id.in_(list(image_ids)))
        rows = [(int(i), str(sha), str(path)) for i, sha, path in action.session.execute(query.order_by(Image.id))]
    return [row for row in rows if not cache.contains(model_id, row[1])], len(rows)


def _encoded(ray: Any, todo: list[tuple[int, str, str]], spec: SegmenterSpec, *, options: RayOptions,
             max_pixels: int, actor: type, roster: Any) -> Any:
    rows = rows_dataset(ray, {"image_id": [i for i, _, _ in todo],
                              "path": [map_paths(path, options.path_map) for _, _, path in todo]},
                        rows_per_block=IMAGES_PER_CALL)
    resources = actor_resources(ray)
    device = "cuda" if resources["num_gpus"] else "cpu"
    encoded = rows.map_batches(enrolled(actor), fn_constructor_args=(spec,),
                               fn_constructor_kwargs={"device": device, "max_pixels": max_pixels, "roster": roster},
                               batch_size=IMAGES_PER_CALL, batch_format="numpy",
                               compute=ray.data.ActorPoolStrategy(size=options.actors), **resources)
    return encoded.iter_batches(batch_size=IMAGES_PER_CALL, batch_format="numpy")


@dataclass
class _Tally:
    computed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def keep(self, cache: EmbeddingCache, model_id: str, batch: dict[str, np.ndarray], *, shas: dict[int, str]) -> None:
        """Write each encoded image of the batch into the cache; count the failures."""
        for k, image_id in enumerate(np.asarray(batch["image_id"], dtype=np.int64)):
            if batch["error"][k]:
                self.errors.append({"file": f"image #{image_id}", "reason": str(batch["error"][k])})
                continue
            sizes = batch["sizes"][k]
            cache.put(model_id, shas[int(image_id)], ImageEmbedding(
                features=np.asarray(batch["features"][k], dtype=np.float16),
                original_size=(int(sizes[0]), int(sizes[1])), input_size=(int(sizes[2]), int(sizes[3]))))
            self.computed += 1
