"""Queries. Keyword-only functions that take a session and never commit: the caller owns the
transaction. Vectors travel as numpy arrays; the store keeps embeddings as float16 bytes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from core.store import bulk, embedding_counts, vectors
from core.store.schema import (
    CurrentLabel,
    Embedding,
    EmbeddingCount,
    Event,
    Image,
    LabelClass,
    Prediction,
    PredictionRun,
    Project,
    TextHead,
    User,
    utcnow,
)


@dataclass(frozen=True)
class ClassSpec:
    name: str
    description: str | None = None
    prompts: tuple[str, ...] | None = None


# -- projects and classes ---------------------------------------------------------------------


def project_by_name(session: Session, *, name: str) -> Project | None:
    return session.scalar(select(Project).where(Project.name == name))


def project_names(session: Session) -> list[str]:
    return list(session.scalars(select(Project.name).order_by(Project.name)))


def create_project(session: Session, *, name: str, classes: Sequence[ClassSpec]) -> Project:
    project = Project(name=name, settings={})
    session.add(project)
    session.flush()
    add_classes(session, project_id=project.id, classes=classes)
    return project


def add_classes(session: Session, *, project_id: int, classes: Sequence[ClassSpec]) -> None:
    last = session.scalar(select(func.max(LabelClass.position)).where(LabelClass.project_id == project_id))
    start = -1 if last is None else last
    for offset, spec in enumerate(classes, start=1):
        session.add(
            LabelClass(
                project_id=project_id,
                name=spec.name,
                description=spec.description,
                prompts=list(spec.prompts) if spec.prompts else None,
                position=start + offset,
            )
        )
    session.flush()


def classes_of(session: Session, *, project_id: int, include_archived: bool = False) -> list[LabelClass]:
    query = select(LabelClass).where(LabelClass.project_id == project_id)
    if not include_archived:
        query = query.where(LabelClass.archived.is_(False))
    return list(session.scalars(query.order_by(LabelClass.position, LabelClass.id)))


def class_names(session: Session, *, project_id: int, include_archived: bool = True) -> dict[int, str]:
    """Class id -> name (archived classes too by default: old decisions still name them)."""
    query = select(LabelClass.id, LabelClass.name).where(LabelClass.project_id == project_id)
    if not include_archived:
        query = query.where(LabelClass.archived.is_(False))
    return {class_id: name for class_id, name in session.execute(query)}


def class_ids_by_name(session: Session, *, project_id: int) -> dict[str, int]:
    """Name -> id of the project's live (not archived) classes."""
    return {c.name: c.id for c in classes_of(session, project_id=project_id)}


# -- users -------------------------------------------------------------------------------------


def user_by_name(session: Session, *, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def team_mode(session: Session) -> bool:
    """True once any user has a password: from then on only known users act."""
    return session.scalar(select(User.id).where(User.password_hash.is_not(None)).limit(1)) is not None


def get_or_create_user(session: Session, *, name: str, role: str = "annotator") -> User:
    user = user_by_name(session, name=name)
    if user is None:
        user = User(name=name, role=role, disabled=False)
        session.add(user)
        session.flush()
    return user


# -- images ------------------------------------------------------------------------------------


def image_by_sha(session: Session, *, project_id: int, sha256: str) -> Image | None:
    return session.scalar(
        select(Image).where(
            Image.project_id == project_id, Image.sha256 == sha256, Image.status == "ok"
        )
    )


def add_image(session: Session, **fields: object) -> Image:
    image = Image(status="ok", **fields)
    session.add(image)
    session.flush()
    return image


def record_failed_image(session: Session, *, project_id: int, original_path: str, error: str) -> None:
    """One row per failing path: re-importing the same bad file updates it instead of piling up."""
    row = session.scalar(
        select(Image).where(
            Image.project_id == project_id,
            Image.original_path == original_path,
            Image.status == "failed",
        )
    )
    if row is None:
        session.add(
            Image(project_id=project_id, original_path=original_path, status="failed", error=error)
        )
    else:
        row.error = error
    session.flush()


def clear_failed_image(session: Session, *, project_id: int, original_path: str) -> None:
    session.execute(
        delete(Image).where(
            Image.project_id == project_id,
            Image.original_path == original_path,
            Image.status == "failed",
        )
    )


def failed_images(session: Session, *, project_id: int) -> list[tuple[str, str]]:
    rows = session.execute(
        select(Image.original_path, Image.error)
        .where(Image.project_id == project_id, Image.status == "failed")
        .order_by(Image.id)
    )
    return [(path, error or "") for path, error in rows]


def image_count(session: Session, *, project_id: int, status: str = "ok") -> int:
    return session.scalar(
        select(func.count()).select_from(Image).where(
            Image.project_id == project_id, Image.status == status
        )
    ) or 0


def images_of(session: Session, *, project_id: int) -> list[Image]:
    return list(
        session.scalars(
            select(Image).where(Image.project_id == project_id, Image.status == "ok").order_by(Image.id)
        )
    )


def image_ids_of(session: Session, *, project_id: int) -> np.ndarray:
    """The ids (int64, sorted) of the project's images, without building a row object per image."""
    query = select(Image.id).where(Image.project_id == project_id, Image.status == "ok").order_by(Image.id)
    return np.fromiter((row[0] for row in session.connection().execute(query)), dtype=np.int64)


def images_missing_embedding(session: Session, *, project_id: int, model_id: str) -> list[tuple[int, str]]:
    cached = select(Embedding.id).where(Embedding.image_id == Image.id, Embedding.model_id == model_id)
    rows = session.execute(
        select(Image.id, Image.file_path)
        .where(Image.project_id == project_id, Image.status == "ok", Image.file_path.is_not(None),
               ~cached.exists())
        .order_by(Image.id)
    )
    return [(image_id, path) for image_id, path in rows if path is not None]


# -- embeddings and heads ----------------------------------------------------------------------


def add_embeddings(session: Session, *, model_id: str, image_ids: Sequence[int], vectors: np.ndarray) -> None:
    half = np.asarray(vectors, dtype=np.float16)
    now = utcnow()
    rows = [
        {"image_id": int(i), "model_id": model_id, "dim": half.shape[1], "vector": half[k].tobytes(),
         "created_at": now}
        for k, i in enumerate(image_ids)
    ]
    bulk.insert_rows(session, Embedding, rows)
    embedding_counts.record(session, model_id=model_id, image_ids=image_ids, sign=1)


def delete_embeddings(session: Session, *, model_id: str, image_ids: Sequence[int]) -> None:
    """Remove these images' vectors of `model_id` (counts and the vector file's revision follow)."""
    ids = [int(i) for i in image_ids]
    embedding_counts.record(session, model_id=model_id, image_ids=ids, sign=-1)
    for start in range(0, len(ids), 5_000):
        session.execute(delete(Embedding).where(Embedding.model_id == model_id,
                                                Embedding.image_id.in_(ids[start : start + 5_000])))


def load_embeddings(session: Session, *, project_id: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(image_ids int64 sorted, embeddings float32 re-normalised) of the project's images: from the
    memory-mapped vector file beside a SQLite database (core.store.vectors), else through SQL."""
    mapped = _mapped_vectors(session, project_id=project_id, model_id=model_id)
    if mapped is not None:
        if not mapped.ids.size:
            return mapped.ids, np.zeros((0, 0), dtype=np.float32)
        if np.all(np.diff(mapped.ids) > 0):
            return mapped.ids, mapped.rows  # the mapped file itself: no copy
        order = np.argsort(mapped.ids, kind="stable")
        return mapped.ids[order], np.asarray(mapped.rows[order])
    rows = session.execute(
        select(Embedding.image_id, Embedding.vector)
        .join(Image, Image.id == Embedding.image_id)
        .where(Image.project_id == project_id, Image.status == "ok", Embedding.model_id == model_id)
        .order_by(Embedding.image_id)
    ).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return ids, np.zeros((0, 0), dtype=np.float32)
    half = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16).reshape(len(rows), -1)
    return ids, vectors.normalized_float32(half)


def _mapped_vectors(session: Session, *, project_id: int, model_id: str) -> vectors.Vectors | None:
    """The vector file's rows; None for a store without a file beside it, or a folder we may not
    write (a read-only copy): then the store answers alone."""
    folder = vectors.folder_of(session)
    if folder is None:
        return None
    try:
        return vectors.open_vectors(session, folder, project_id=project_id, model_id=model_id)
    except OSError:
        return None


def embedded_model_ids(session: Session, *, project_id: int) -> list[tuple[str, int]]:
    """(model id, embedded images) of the project, most first: one row per model (embedding_counts)."""
    rows = session.execute(
        select(EmbeddingCount.model_id, EmbeddingCount.count)
        .where(EmbeddingCount.project_id == project_id, EmbeddingCount.count > 0)
        .order_by(EmbeddingCount.count.desc(), EmbeddingCount.model_id)
    )
    return [(model_id, count) for model_id, count in rows]


def text_head(session: Session, *, project_id: int, model_id: str, prompts_hash: str) -> TextHead | None:
    return session.scalar(
        select(TextHead).where(
            TextHead.project_id == project_id,
            TextHead.model_id == model_id,
            TextHead.prompts_hash == prompts_hash,
        )
    )


def save_text_head(
    session: Session, *, project_id: int, model_id: str, prompts_hash: str, label_ids: Sequence[int],
    vectors: np.ndarray, logit_scale: float,
) -> TextHead:
    head = TextHead(
        project_id=project_id, model_id=model_id, prompts_hash=prompts_hash,
        label_ids=[int(i) for i in label_ids], dim=int(vectors.shape[1]),
        vectors=np.asarray(vectors, dtype=np.float32).tobytes(), logit_scale=float(logit_scale),
    )
    session.add(head)
    session.flush()
    return head


def head_matrix(head: TextHead) -> np.ndarray:
    return np.frombuffer(head.vectors, dtype=np.float32).reshape(len(head.label_ids), head.dim)


# -- predictions -------------------------------------------------------------------------------


def add_prediction_run(
    session: Session, *, project_id: int, model_id: str, model_version: str, prompts_hash: str | None,
    label_ids: Sequence[int], image_ids: np.ndarray, probs: np.ndarray,
) -> PredictionRun:
    run = PredictionRun(
        project_id=project_id, model_id=model_id, model_version=model_version,
        prompts_hash=prompts_hash, label_ids=[int(i) for i in label_ids],
    )
    session.add(run)
    session.flush()
    probs = np.asarray(probs, dtype=np.float32)
    top = probs.argmax(axis=1)
    now = utcnow()
    rows = [
        {"run_id": run.id, "image_id": int(image_id), "probs": probs[k].tobytes(),
         "label_id": int(label_ids[top[k]]), "confidence": float(probs[k, top[k]]), "created_at": now}
        for k, image_id in enumerate(image_ids)
    ]
    bulk.insert_rows(session, Prediction, rows)
    return run


def latest_run(session: Session, *, project_id: int) -> PredictionRun | None:
    return session.scalar(
        select(PredictionRun).where(PredictionRun.project_id == project_id).order_by(PredictionRun.id.desc())
    )


# -- events and current labels -----------------------------------------------------------------


def append_event(session: Session, **fields: object) -> Event:
    event = Event(**fields)
    session.add(event)
    session.flush()
    return event


def set_current_label(session: Session, *, event: Event) -> None:
    """Make the current label of event.image_id follow the event (label_after None clears it)."""
    write_current_label(session, event=event, row=session.get(CurrentLabel, event.image_id))


def write_current_label(session: Session, *, event: Event, row: CurrentLabel | None) -> None:
    """set_current_label when the caller has already read the image's current label `row`."""
    if event.label_after_id is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = CurrentLabel(image_id=event.image_id, project_id=event.project_id)
        session.add(row)
    row.label_id = event.label_after_id
    row.source = event.source
    row.annotator_id = event.annotator_id
    row.event_id = event.id
    row.updated_at = event.created_at or utcnow()
    session.flush()


def current_labels(session: Session, *, project_id: int) -> dict[int, CurrentLabel]:
    rows = session.scalars(select(CurrentLabel).where(CurrentLabel.project_id == project_id))
    return {row.image_id: row for row in rows}


def current_label(session: Session, *, image_id: int) -> CurrentLabel | None:
    return session.get(CurrentLabel, image_id)


def events_of(session: Session, *, project_id: int, image_ids: Iterable[int] | None = None) -> list[Event]:
    query = select(Event).where(Event.project_id == project_id)
    if image_ids is not None:
        query = query.where(Event.image_id.in_(list(image_ids)))
    return list(session.scalars(query.order_by(Event.id)))


def label_counts(session: Session, *, project_id: int) -> list[tuple[int, str, int]]:
    rows = session.execute(
        select(CurrentLabel.label_id, CurrentLabel.source, func.count())
        .where(CurrentLabel.project_id == project_id)
        .group_by(CurrentLabel.label_id, CurrentLabel.source)
    )
    return [(label_id, source, count) for label_id, source, count in rows]


def undone_events(*, project_id: int) -> Select:  # type: ignore[type-arg]
    """The ids of the project's events an undo reversed (a subquery for `Event.id.not_in(...)`)."""
    return select(Event.undoes_event_id).where(Event.project_id == project_id, Event.action == "undo",
                                               Event.undoes_event_id.is_not(None))
