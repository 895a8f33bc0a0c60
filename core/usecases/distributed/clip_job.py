"""`clipmark embed --engine ray`: the images of a project without an embedding for this model are
embedded by a pool of CLIP actors; the driver streams the vectors back and writes them to the store in
batches (COPY on PostgreSQL), each batch its own transaction. A stopped or failed job resumes by
skipping what is stored: only the images still missing are sent again."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ModelLoadError
from core.models.base import ModelSpec
from core.store import repo
from core.usecases.distributed.clip_actor import ClipEmbedder
from core.usecases.distributed.engine import (
    RayOptions,
    actor_resources,
    block_rows,
    connect,
    map_paths,
    rows_dataset,
)
from core.usecases.distributed.roster import enrolled, job_actors
from core.usecases.scoring import EmbedSummary, ProgressFn


def embed_project_ray(
    sessions: sessionmaker[Session], spec: ModelSpec, *, project_id: int, options: RayOptions, max_pixels: int,
    on_progress: ProgressFn | None = None, actor: type = ClipEmbedder,
) -> EmbedSummary:
    """Embed every image of the project that has no embedding for `spec` on Ray. `actor`: the callable
    class each actor runs (ClipEmbedder; tests pass a subclass that counts or fails)."""
    with sessions.begin() as session:
        missing = repo.images_missing_embedding(session, project_id=project_id, model_id=spec.model_id)
        total = repo.image_count(session, project_id=project_id)
    summary = EmbedSummary(model_id=spec.model_id, cached=total - len(missing))
    if not missing:
        return summary
    ray = connect(options)
    paths = dict(missing)
    try:
        with job_actors(ray) as roster:
            for batch in _embedded(ray, missing, spec, options=options, max_pixels=max_pixels, actor=actor,
                                   roster=roster):
                _store(sessions, batch, summary=summary, paths=paths)
                if on_progress:
                    on_progress(summary.computed + len(summary.failed), len(missing))
    except ray.exceptions.RayError as exc:
        raise ModelLoadError(f"embedding on Ray stopped after {summary.computed} new images ({exc}); "
                             "what was stored is kept: run the same command again to resume") from exc
    return summary


def _embedded(ray: Any, missing: list[tuple[int, str]], spec: ModelSpec, *, options: RayOptions, max_pixels: int,
              actor: type, roster: Any) -> Any:
    """The actors' output batches of (image_id, vector, error), `options.write_rows` rows each."""
    rows = rows_dataset(ray, {"image_id": [image_id for image_id, _ in missing],
                              "path": [map_paths(path, options.path_map) for _, path in missing]},
                        rows_per_block=block_rows(len(missing), options))
    resources = actor_resources(ray)
    device = "cuda" if resources["num_gpus"] else "cpu"
    vectors = rows.map_batches(enrolled(actor), fn_constructor_args=(spec,),
                               fn_constructor_kwargs={"device": device, "max_pixels": max_pixels, "roster": roster},
                               batch_size=options.batch_size, batch_format="numpy",
                               compute=ray.data.ActorPoolStrategy(size=options.actors), **resources)
    return vectors.iter_batches(batch_size=options.write_rows, batch_format="numpy")


def _store(sessions: sessionmaker[Session], batch: dict[str, np.ndarray], *, summary: EmbedSummary,
           paths: dict[int, str]) -> None:
    """One transaction per output batch: the vectors of the rows without an error."""
    ok = np.asarray([not error for error in batch["error"]], dtype=bool)
    ids = np.asarray(batch["image_id"], dtype=np.int64)
    with sessions.begin() as session:
        repo.add_embeddings(session, model_id=summary.model_id, image_ids=ids[ok].tolist(),
                            vectors=np.asarray(batch["vector"])[ok])
    summary.computed += int(ok.sum())
    summary.failed.extend((paths[int(i)], str(e)) for i, e in zip(ids[~ok], batch["error"][~ok], strict=True))
