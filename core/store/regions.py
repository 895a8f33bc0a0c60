"""Queries on regions: instances, region proposals and the region events. Keyword-only functions
that take a session and never commit (the caller owns the transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from core.store.schema import Image, Instance, LabelClass, Lease, RegionEvent, RegionProposal, User, utcnow

# -- instances ---------------------------------------------------------------------------------


def add_instance(session: Session, **fields: Any) -> Instance:
    instance = Instance(**fields)
    session.add(instance)
    session.flush()
    return instance


def instance(session: Session, *, project_id: int, instance_id: int) -> Instance | None:
    return session.scalar(select(Instance).where(Instance.id == instance_id, Instance.project_id == project_id))


def instances_of_image(session: Session, *, image_id: int, include_deleted: bool = False) -> list[Instance]:
    query = select(Instance).where(Instance.image_id == image_id)
    if not include_deleted:
        query = query.where(Instance.deleted.is_(False))
    return list(session.scalars(query.order_by(Instance.id)))


def instance_rows(session: Session, *, image_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The live instances of these images with class and annotator names: what exports write."""
    annotator = aliased(User)
    query = (select(Instance, LabelClass.name, annotator.name)
             .join(LabelClass, LabelClass.id == Instance.label_id)
             .outerjoin(annotator, annotator.id == Instance.annotator_id)
             .where(Instance.image_id.in_(list(image_ids)), Instance.deleted.is_(False))
             .order_by(Instance.image_id, Instance.id))
    found: dict[int, list[dict[str, Any]]] = {}
    for row, label, who in session.execute(query):
        found.setdefault(row.image_id, []).append({
            "id": row.id, "label": label, "rle": row.rle, "bbox": [float(v) for v in row.bbox],
            "area": int(row.area), "score": row.score, "label_confidence": row.label_confidence,
            "source": row.source, "annotator": who, "segmenter_id": row.segmenter_id,
            "timestamp": row.updated_at})
    return found


def count_instances(session: Session, *, project_id: int) -> int:
    query = select(func.count()).where(Instance.project_id == project_id, Instance.deleted.is_(False))
    return session.scalar(query) or 0


# -- events ------------------------------------------------------------------------------------


def add_event(session: Session, **fields: Any) -> RegionEvent:
    event = RegionEvent(**fields)
    session.add(event)
    session.flush()
    return event


def latest_undoable(session: Session, *, project_id: int, annotator_id: int) -> RegionEvent | None:
    """The user's latest region event that is not an undo and has not been undone."""
    undone = select(RegionEvent.undoes_event_id).where(RegionEvent.undoes_event_id.is_not(None))
    query = (select(RegionEvent)
             .where(RegionEvent.project_id == project_id, RegionEvent.annotator_id == annotator_id,
                    RegionEvent.action != "undo", RegionEvent.id.not_in(undone))
             .order_by(RegionEvent.id.desc()).limit(1))
    return session.scalar(query)


# -- proposals ---------------------------------------------------------------------------------


def add_proposal(session: Session, *, probs: np.ndarray | None = None, **fields: Any) -> RegionProposal:
    blob = None if probs is None else np.asarray(probs, dtype=np.float32).tobytes()
    proposal = RegionProposal(probs=blob, **fields)
    session.add(proposal)
    session.flush()
    return proposal


def proposal(session: Session, *, project_id: int, proposal_id: int) -> RegionProposal | None:
    return session.scalar(select(RegionProposal).where(RegionProposal.id == proposal_id,
                                                       RegionProposal.project_id == project_id))


def proposals_of_image(session: Session, *, image_id: int,
                       statuses: Sequence[str] | None = None) -> list[RegionProposal]:
    query = select(RegionProposal).where(RegionProposal.image_id == image_id)
    if statuses is not None:
        query = query.where(RegionProposal.status.in_(list(statuses)))
    return list(session.scalars(query.order_by(RegionProposal.id)))


def open_proposals(session: Session, *, project_id: int, limit: int, image_id: int | None = None,
                   exclude: Sequence[int] = ()) -> list[RegionProposal]:
    """Open proposals, the least certain first (then the largest)."""
    query = select(RegionProposal).where(RegionProposal.project_id == project_id, RegionProposal.status == "open")
    if image_id is not None:
        query = query.where(RegionProposal.image_id == image_id)
    if exclude:
        query = query.where(RegionProposal.id.not_in(list(exclude)))
    query = query.order_by(RegionProposal.uncertainty.desc(), RegionProposal.area.desc(), RegionProposal.id)
    return list(session.scalars(query.limit(limit)))


def decide_proposal(session: Session, proposal_row: RegionProposal, *, status: str, user_id: int | None) -> None:
    proposal_row.status = status
    proposal_row.decided_by = user_id if status != "open" else None
    proposal_row.decided_at = utcnow() if status != "open" else None
    session.flush()


# -- what region actions look up -------------------------------------------------------------


def usable_image_ids(session: Session, *, project_id: int) -> list[int]:
    query = select(Image.id).where(Image.project_id == project_id, Image.status == "ok").order_by(Image.id)
    return list(session.scalars(query))


def neighbour_image(session: Session, *, project_id: int, image_id: int | None, step: int) -> int | None:
    """The next (step >= 0) or previous usable image of the project by id; wraps around at the ends."""
    base = select(Image.id).where(Image.project_id == project_id, Image.status == "ok")
    current = -1 if image_id is None else int(image_id)
    if step >= 0:
        found = session.scalar(base.where(Image.id > current).order_by(Image.id).limit(1))
        return found if found is not None else session.scalar(base.order_by(Image.id).limit(1))
    found = session.scalar(base.where(Image.id < current).order_by(Image.id.desc()).limit(1))
    return found if found is not None else session.scalar(base.order_by(Image.id.desc()).limit(1))


def count_open_proposals(session: Session, *, project_id: int, image_id: int) -> int:
    query = select(func.count()).where(RegionProposal.project_id == project_id, RegionProposal.image_id == image_id,
                                       RegionProposal.status == "open")
    return session.scalar(query) or 0


def holds_live_lease(session: Session, *, image_id: int, user_id: int, now: datetime | None = None) -> bool:
    """Does this user hold a live (unfinished, unexpired) lease on the image? Then it is theirs to
    edit: other annotators may not change the instances they drew on it."""
    query = select(func.count()).where(Lease.image_id == image_id, Lease.user_id == user_id,
                                       Lease.done.is_(False), Lease.expires_at >= (now or utcnow()))
    return bool(session.scalar(query))
