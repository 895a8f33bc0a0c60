"""embedding_counts: how many vectors of each model a project has, and the revision that tells the
memory-mapped vector file (core.store.vectors) whether it is current. Kept by repo.add_embeddings and
repo.delete_embeddings in the writing transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.store import vectors
from core.store.schema import Embedding, EmbeddingCount, Image


def record(session: Session, *, model_id: str, image_ids: Sequence[int], sign: int) -> None:
    """Move embedding_counts by the rows added (sign 1) or about to be deleted (-1), per project of
    their images, with a new revision; then bring the vector file along (same transaction)."""
    changed: dict[int, int] = {}
    for start in range(0, len(image_ids), 5_000):
        chunk = [int(i) for i in image_ids[start : start + 5_000]]
        query = select(Image.project_id, func.count()).where(Image.id.in_(chunk))
        if sign < 0:
            query = query.join(Embedding, Embedding.image_id == Image.id).where(Embedding.model_id == model_id)
        for project_id, count in session.execute(query.group_by(Image.project_id)):
            changed[project_id] = changed.get(project_id, 0) + sign * count
    revisions = {}
    for project_id, count in changed.items():
        row = session.get(EmbeddingCount, (project_id, model_id), with_for_update=True)
        if row is None:
            row = EmbeddingCount(project_id=project_id, model_id=model_id, count=0)
            session.add(row)
        revisions[project_id] = (row.revision, uuid.uuid4().hex, row.count + count)
        row.count, row.revision = row.count + count, revisions[project_id][1]
    session.flush()
    if sign > 0:
        write_through(session, model_id=model_id, revisions=revisions)


def write_through(session: Session, *, model_id: str, revisions: dict[int, tuple[str | None, str, int]]) -> None:
    folder = vectors.folder_of(session)
    if folder is None:
        return
    for project_id, (before, after, count) in revisions.items():
        try:
            vectors.write_through(session, folder, project_id=project_id, model_id=model_id, before=before,
                                  after=after, count=count)
        except OSError:
            pass  # a cache: a folder we cannot write leaves the store to answer alone
