"""Blind random audits: what the queue served is recorded (once per image, with the pool's size and
the pseudo-label shown), and the answered audits give the honest estimate (core.labeling.estimate).

An audit is answered when its image has a human label now (accept or correct; an undo takes the
answer back); a skipped audit is unanswered and widens the interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.store import repo
from core.store.schema import AcceptBatch, CurrentLabel, Event, ServedItem, utcnow
from core.usecases.labeling.queue import ProjectState, Ranked

HUMAN_SOURCES = ("human", "review")


def record_served(session: Session, state: ProjectState, chosen: list[Ranked], *, project_id: int,
                  user_id: int) -> None:
    """One served_items row per newly served unlabeled image; an image served before by the queue
    and now drawn as an audit becomes an audit (the draw is what the estimate needs)."""
    with state.lock:
        fresh = [r for r in chosen if r.image_id in state.position and not state.is_labeled(r.image_id)]
        state.hold_out(r.image_id for r in fresh if r.audit)
        shown = {r.image_id: state.top_k(r.image_id, 1) for r in fresh}
        pool = int(state.pool_rows().size)
        version = state.classifier.version if state.classifier else None
    if not fresh:
        return
    rows = [{"project_id": project_id, "image_id": r.image_id, "user_id": user_id, "audit": r.audit,
             "pool_size": pool, "label_id": shown[r.image_id][0][0] if shown[r.image_id] else None,
             "confidence": shown[r.image_id][0][1] if shown[r.image_id] else None, "model_version": version,
             "served_at": utcnow()} for r in fresh]
    _insert_new(session, rows)
    audits = [row for row in rows if row["audit"]]
    for row in audits:  # served earlier by the queue, drawn now as an audit
        session.execute(update(ServedItem).where(ServedItem.image_id == row["image_id"],
                                                 ServedItem.audit.is_(False)).values(**row))


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(session.get_bind().dialect.name)
    if dialect is not None:
        session.execute(dialect.insert(ServedItem).values(rows).on_conflict_do_nothing())
        return
    known = set(session.scalars(select(ServedItem.image_id).where(ServedItem.image_id.in_(
        [row["image_id"] for row in rows]))))
    session.add_all(ServedItem(**row) for row in rows if row["image_id"] not in known)


@dataclass(frozen=True)
class ServedRows:
    """Served items in the order they were answered (answered first, then unanswered)."""

    image_ids: np.ndarray   # (M,)
    audit: np.ndarray       # (M,) bool
    shown: np.ndarray       # (M,) label_id of the pseudo-label shown when served, -1 none
    human: np.ndarray       # (M,) label_id of the human label now, -1 unanswered
    labels_then: np.ndarray  # (M,) human labels in the project when it was answered (-1 unanswered)
    pool_size: np.ndarray   # (M,) unlabeled pool when it was served
    covered: np.ndarray     # (M,) bool: an audit a standing accept-the-rest batch took the like of


def served_rows(session: Session, *, project_id: int) -> ServedRows:
    """Every served item with its answer (the human label now), in answer order."""
    query = (select(ServedItem.image_id, ServedItem.audit, ServedItem.label_id, CurrentLabel.label_id,
                    CurrentLabel.event_id, ServedItem.pool_size)
             .outerjoin(CurrentLabel, (CurrentLabel.image_id == ServedItem.image_id)
                        & CurrentLabel.source.in_(HUMAN_SOURCES))
             .where(ServedItem.project_id == project_id).order_by(ServedItem.id))
    rows = session.execute(query).all()
    human_events = np.sort(np.fromiter(session.scalars(select(CurrentLabel.event_id).where(
        CurrentLabel.project_id == project_id, CurrentLabel.source.in_(HUMAN_SOURCES))), dtype=np.int64))
    event = np.array([r[4] if r[4] is not None else np.iinfo(np.int64).max for r in rows], dtype=np.int64)
    order = np.argsort(event, kind="stable")
    answered = event[order] < np.iinfo(np.int64).max
    then = np.where(answered, np.searchsorted(human_events, event[order], side="right"), -1)
    column = [np.array([r[k] if r[k] is not None else -1 for r in rows], dtype=np.int64) for k in (0, 2, 3, 5)]
    audit = np.array([bool(r[1]) for r in rows], dtype=bool)
    ids = column[0][order]
    return ServedRows(image_ids=ids, audit=audit[order], shown=column[1][order],
                      human=column[2][order], labels_then=then, pool_size=column[3][order],
                      covered=np.isin(ids, sorted(covered_audits(session, project_id=project_id))))


def covered_audits(session: Session, *, project_id: int) -> set[int]:
    """The audits that batches still standing (an accept event of theirs not undone) covered: at or
    above their threshold when accepted, so they stand for the accepted images, not the pool left."""
    undone = repo.undone_events(project_id=project_id)
    standing = select(Event.batch_id).where(Event.project_id == project_id, Event.batch_id.is_not(None),
                                            Event.action == "accept", Event.id.not_in(undone))
    lists = session.scalars(select(AcceptBatch.covered_audits).where(
        AcceptBatch.project_id == project_id, AcceptBatch.id.in_(standing)))
    return {int(i) for ids in lists if ids for i in ids}
