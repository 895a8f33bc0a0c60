"""Embedding and zero-shot scoring use cases: cache image embeddings per model, build the text head
from the classes' prompt ensembles, and store prediction runs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from core.labeling.zeroshot import class_prompts, prompts_hash, text_head
from core.models.base import ImageTextModel
from core.store import repo
from core.store.schema import LabelClass

ProgressFn = Callable[[int, int], None]


@dataclass
class EmbedSummary:
    model_id: str
    computed: int = 0
    cached: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"model_id": self.model_id, "computed": self.computed, "cached": self.cached,
                "failed": len(self.failed), "errors": [{"file": f, "reason": r} for f, r in self.failed]}


def embed_project(
    sessions: sessionmaker[Session], model: ImageTextModel, *, project_id: int, batch_size: int,
    num_workers: int | None, max_pixels: int, progress: bool = True, on_progress: ProgressFn | None = None,
) -> EmbedSummary:
    """Embed every image of the project that has no cached embedding for this model. Each batch is
    committed as it arrives, so an interrupted run resumes where it stopped."""
    from core.models.clip import embed_images  # lazy: importing it imports torch

    with sessions.begin() as session:
        missing = repo.images_missing_embedding(session, project_id=project_id, model_id=model.model_id)
        total = repo.image_count(session, project_id=project_id)
    summary = EmbedSummary(model_id=model.model_id, cached=total - len(missing))
    ids = [image_id for image_id, _ in missing]
    paths = [path for _, path in missing]
    batches = embed_images(model, paths, batch_size=batch_size, num_workers=num_workers,
                           progress=progress, max_pixels=max_pixels)
    for batch in batches:
        with sessions.begin() as session:
            repo.add_embeddings(session, model_id=model.model_id,
                                image_ids=[ids[p] for p in batch.positions], vectors=batch.embeddings)
        summary.computed += len(batch.positions)
        summary.failed.extend((paths[p], reason) for p, reason in batch.errors)
        if on_progress:
            on_progress(summary.computed + len(summary.failed), len(ids))
    return summary


def prompts_per_class(classes: list[LabelClass]) -> list[list[str]]:
    return [class_prompts(c.name, description=c.description, prompts=c.prompts) for c in classes]


def head_key(classes: list[LabelClass]) -> str:
    """The prompts hash covers the class order and every prompt, so any change makes a new head."""
    return prompts_hash(prompts_per_class(classes))


def ensure_text_head(
    session: Session, model_loader: Callable[[], ImageTextModel], *, project_id: int, model_id: str,
    classes: list[LabelClass], writer: Callable[[], AbstractContextManager[Session]] | None = None,
) -> tuple[np.ndarray, float, str]:
    """(head K x D, logit_scale, prompts_hash): from the store, or computed with the model once.
    `writer`: a transaction of its own to store a new head in, for callers whose `session` is
    read-only (the head is computed before it opens, so the write lock is held only to insert)."""
    key = head_key(classes)
    stored = repo.text_head(session, project_id=project_id, model_id=model_id, prompts_hash=key)
    if stored is not None:
        return repo.head_matrix(stored), stored.logit_scale, key
    model = model_loader()
    head = text_head(model.encode_texts, prompts_per_class(classes))
    with writer() if writer is not None else nullcontext(session) as target:
        if writer is None or repo.text_head(target, project_id=project_id, model_id=model_id,
                                            prompts_hash=key) is None:
            repo.save_text_head(target, project_id=project_id, model_id=model_id, prompts_hash=key,
                                label_ids=[c.id for c in classes], vectors=head, logit_scale=model.logit_scale)
    return head, model.logit_scale, key


@dataclass(frozen=True)
class PredictSummary:
    run_id: int
    images: int
    model_id: str
    model_version: str
    prompts_hash: str | None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

