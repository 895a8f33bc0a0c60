"""Item leases: an item handed to an annotator is theirs for a while, so two annotators never get
the same item unless overlap asks for it. Works the same on SQLite and PostgreSQL: a claim is an
insert on the (image, slot) key or a conditional update of an expired row, never read-then-write."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.store.schema import Lease, utcnow

LEASE_SECONDS = 600


def overlap_slots(*, project_id: int, image_id: int, share: float, annotators: int) -> int:
    """How many people label this item: `annotators` for a stable pseudo-random `share` of the
    items (the same answer in every process), 1 for the rest."""
    if share <= 0 or annotators < 2:
        return 1
    digest = hashlib.sha256(f"{project_id}:{image_id}".encode()).digest()
    return annotators if int.from_bytes(digest[:8], "big") / 2**64 < share else 1


def claim(
    session: Session, *, project_id: int, image_id: int, user_id: int, slots: int = 1,
    now: datetime | None = None, seconds: int = LEASE_SECONDS,
) -> int | None:
    """The slot this user now holds on the image, or None when every slot is taken or done, or the
    user has already labeled it. Renews the user's own live lease."""
    now = now or utcnow()
    expires = now + timedelta(seconds=seconds)
    rows = {r.slot: r for r in session.scalars(select(Lease).where(Lease.image_id == image_id))}
    mine = [r for r in rows.values() if r.user_id == user_id]
    if any(r.done for r in mine):
        return None
    if mine:
        mine[0].expires_at = expires
        session.flush()
        return mine[0].slot
    for slot in range(slots):
        if slot not in rows and insert(session, project_id=project_id, image_id=image_id, slot=slot,
                                       user_id=user_id, expires_at=expires):
            return slot
        taken = session.execute(
            update(Lease)
            .where(Lease.image_id == image_id, Lease.slot == slot, Lease.done.is_(False), Lease.expires_at < now)
            .values(user_id=user_id, expires_at=expires, created_at=now)
            .execution_options(synchronize_session=False)
        )
        if _count(taken) == 1:
            return slot
    return None


def insert(session: Session, *, image_id: int, slot: int, project_id: int, user_id: int, expires_at: datetime,
           **_: object) -> bool:
    """One new lease; False when that (image, slot) is taken."""
    try:
        with session.begin_nested():
            session.add(Lease(image_id=image_id, slot=slot, project_id=project_id, user_id=user_id,
                              expires_at=expires_at, done=False))
        return True
    except IntegrityError:
        return False


def holder_slot(session: Session, *, image_id: int, user_id: int) -> Lease | None:
    return session.scalar(select(Lease).where(Lease.image_id == image_id, Lease.user_id == user_id))


def complete_mine(session: Session, *, image_id: int, user_id: int) -> bool:
    """The user labeled an item they hold (a live or finished slot): it is done for good. False when
    they hold none (then `complete` claims one first)."""
    done = session.execute(update(Lease).where(Lease.image_id == image_id, Lease.user_id == user_id)
                           .values(done=True).execution_options(synchronize_session=False))
    return bool(_count(done))


def complete(session: Session, *, project_id: int, image_id: int, user_id: int) -> None:
    """The user labeled the item: their slot is done for good (claimed now if they had none)."""
    lease = holder_slot(session, image_id=image_id, user_id=user_id)
    if lease is None:
        slot = claim(session, project_id=project_id, image_id=image_id, user_id=user_id, slots=64)
        lease = None if slot is None else session.get(Lease, (image_id, slot))
    if lease is not None:
        lease.done = True
        session.flush()


def reopen(session: Session, *, project_id: int, image_id: int, user_id: int) -> None:
    """Undo: the item is this user's to decide again (their finished slot becomes a live lease)."""
    lease = holder_slot(session, image_id=image_id, user_id=user_id)
    if lease is None:
        claim(session, project_id=project_id, image_id=image_id, user_id=user_id)
        return
    lease.done = False
    lease.expires_at = utcnow() + timedelta(seconds=LEASE_SECONDS)
    session.flush()


def release(session: Session, *, image_id: int, user_id: int) -> None:
    """Skip: give the item back now."""
    session.execute(delete(Lease).where(Lease.image_id == image_id, Lease.user_id == user_id,
                                        Lease.done.is_(False)))


def release_all(session: Session, *, user_id: int, project_id: int | None = None) -> int:
    """Logout: give back every live lease of the user."""
    query = delete(Lease).where(Lease.user_id == user_id, Lease.done.is_(False))
    if project_id is not None:
        query = query.where(Lease.project_id == project_id)
    return _count(session.execute(query))


def renew_all(session: Session, *, user_id: int, seconds: int = LEASE_SECONDS) -> int:
    """Heartbeat while the annotator works: push back the expiry of every live lease they hold."""
    result = session.execute(
        update(Lease).where(Lease.user_id == user_id, Lease.done.is_(False))
        .values(expires_at=utcnow() + timedelta(seconds=seconds))
    )
    return _count(result)


def held_by_others(session: Session, *, project_id: int, user_id: int, now: datetime | None = None) -> set[int]:
    """Images someone else holds a live lease on: not to be offered to this user. (Finished items are
    labeled, so the queue leaves them out already, and a claim refuses a finished slot.)"""
    now = now or utcnow()
    rows = session.execute(
        select(Lease.image_id).where(Lease.project_id == project_id, Lease.user_id != user_id,
                                     Lease.done.is_(False), Lease.expires_at >= now)
    )
    return {image_id for (image_id,) in rows}


def done_by(session: Session, *, project_id: int, user_id: int) -> set[int]:
    rows = session.execute(select(Lease.image_id).where(Lease.project_id == project_id, Lease.user_id == user_id,
                                                        Lease.done.is_(True)))
    return {image_id for (image_id,) in rows}


def _count(result: Any) -> int:
    """Rows an UPDATE or DELETE touched."""
    return cast(CursorResult[Any], result).rowcount or 0
