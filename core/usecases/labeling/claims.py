"""Handing out the next items: one read of the project's leases tells which items others hold and,
with overlap, which need another opinion; the new claims are then one multi-row insert (a row that
another process inserted meanwhile is skipped by the database, and that item falls back to a
one-by-one claim). Leases this annotator already holds are renewed only when half their time is up."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.store.schema import Image, Lease, Project, utcnow
from core.usecases.labeling.queue import ProjectState, Ranked
from core.usecases.team import leases
from core.usecases.team.events import OVERLAP_REASON, needs_opinion

EXTRA_CANDIDATES = 16


@dataclass(frozen=True)
class Overlap:
    share: float
    annotators: int

    @classmethod
    def of(cls, project: Project) -> Overlap:
        settings = project.settings or {}
        return cls(share=float(settings.get("overlap", 0.0)), annotators=int(settings.get("overlap_annotators", 2)))

    @property
    def active(self) -> bool:
        return self.share > 0 and self.annotators >= 2

    def slots(self, *, project_id: int, image_id: int) -> int:
        return leases.overlap_slots(project_id=project_id, image_id=image_id, share=self.share,
                                    annotators=self.annotators)


@dataclass(frozen=True)
class LeaseRow:
    image_id: int
    slot: int
    user_id: int
    done: bool
    expires_at: datetime


ImageFile = tuple[str, str, str | None]  # original path, readable copy, sha256


def next_claimed(session: Session, state: ProjectState, *, project_id: int, user_id: int, overlap: Overlap,
                 n: int) -> tuple[list[Ranked], dict[int, ImageFile]]:
    """The next n items for this annotator, each now leased to them, and their files. Without
    overlap the top of the queue is read with its leases and files in one query; when others hold
    too much of it (or with overlap) the project's leases are read first."""
    if not overlap.active:
        with state.lock:
            candidates = state.next(n + EXTRA_CANDIDATES)
        rows, files = _candidate_rows(session, [c.image_id for c in candidates])
        plan = _plan(candidates, rows, now=utcnow(), user_id=user_id, project_id=project_id, overlap=overlap, n=n)
        if len(plan.chosen) == n or len(candidates) < n + EXTRA_CANDIDATES:
            return plan.carry_out(session, overlap), files
    chosen = _next_from_all_leases(session, state, project_id=project_id, user_id=user_id, overlap=overlap, n=n)
    _, files = _candidate_rows(session, [c.image_id for c in chosen])
    return chosen, files


def _next_from_all_leases(session: Session, state: ProjectState, *, project_id: int, user_id: int,
                          overlap: Overlap, n: int) -> list[Ranked]:
    now = utcnow()
    rows = _lease_rows(session, project_id=project_id, with_done=overlap.active)
    by_image: dict[int, list[LeaseRow]] = defaultdict(list)
    for row in rows:
        by_image[row.image_id].append(row)
    busy = {r.image_id for r in rows if r.user_id != user_id and not r.done and r.expires_at >= now}
    extra = [Ranked(i, 0.0, OVERLAP_REASON) for i in sorted(by_image) if overlap.active and needs_opinion(
        [(r.user_id, r.done) for r in by_image[i]], user_id=user_id,
        slots=overlap.slots(project_id=project_id, image_id=i))]
    with state.lock:
        queued = state.next(n + EXTRA_CANDIDATES, exclude=busy)
    plan = _plan(extra + queued, by_image, now=now, user_id=user_id, project_id=project_id, overlap=overlap, n=n)
    return plan.carry_out(session, overlap)


def _plan(candidates: list[Ranked], rows: dict[int, list[LeaseRow]], *, now: datetime, user_id: int,
          project_id: int, overlap: Overlap, n: int) -> _Plan:
    plan = _Plan(now=now, user_id=user_id, project_id=project_id)
    for item in candidates:
        if len(plan.chosen) == n:
            break
        if item.image_id not in plan.ids:
            plan.consider(item, rows.get(item.image_id, []), overlap.slots(project_id=project_id,
                                                                         image_id=item.image_id))
    return plan


def _candidate_rows(session: Session, image_ids: list[int]) -> tuple[dict[int, list[LeaseRow]],
                                                                       dict[int, ImageFile]]:
    """The leases and files of these images, in one query."""
    query = (select(Image.id, Image.original_path, Image.file_path, Image.sha256, Lease.slot, Lease.user_id,
                    Lease.done, Lease.expires_at)
             .outerjoin(Lease, Lease.image_id == Image.id).where(Image.id.in_(image_ids)))
    leases_of: dict[int, list[LeaseRow]] = defaultdict(list)
    files: dict[int, ImageFile] = {}
    for image_id, path, file_path, sha256, slot, holder, done, expires_at in session.execute(query):
        files[image_id] = (path, file_path or path, sha256)  # queued images are readable: status ok
        if slot is not None:
            leases_of[image_id].append(LeaseRow(image_id, slot, holder, done, expires_at))
    return leases_of, files


def _lease_rows(session: Session, *, project_id: int, with_done: bool) -> list[LeaseRow]:
    query = select(Lease.image_id, Lease.slot, Lease.user_id, Lease.done, Lease.expires_at).where(
        Lease.project_id == project_id)
    if not with_done:
        query = query.where(Lease.done.is_(False))
    return [LeaseRow(*row) for row in session.execute(query)]


class _Plan:
    """What to write for the chosen items: new leases, renewals, and rare one-by-one claims."""

    def __init__(self, *, now: datetime, user_id: int, project_id: int) -> None:
        self.now, self.user_id, self.project_id = now, user_id, project_id
        self.chosen: list[Ranked] = []
        self.ids: set[int] = set()
        self.inserts: list[dict[str, Any]] = []
        self.renew: list[int] = []
        self.one_by_one: set[int] = set()

    def consider(self, item: Ranked, rows: list[LeaseRow], slots: int) -> None:
        mine = [r for r in rows if r.user_id == self.user_id]
        if any(r.done for r in mine) or any(r.user_id != self.user_id and not r.done and r.expires_at >= self.now
                                            for r in rows) and slots == 1:
            return
        if mine:
            if mine[0].expires_at < self.now + timedelta(seconds=leases.LEASE_SECONDS / 2):
                self.renew.append(item.image_id)
        else:
            taken = {r.slot for r in rows}
            free = [s for s in range(slots) if s not in taken]
            if free:
                self.inserts.append({"image_id": item.image_id, "slot": free[0], "project_id": self.project_id,
                                     "user_id": self.user_id, "done": False, "created_at": self.now,
                                     "expires_at": self.now + timedelta(seconds=leases.LEASE_SECONDS)})
            elif any(not r.done and r.expires_at < self.now for r in rows):
                self.one_by_one.add(item.image_id)
            else:
                return
        self.chosen.append(item)
        self.ids.add(item.image_id)

    def carry_out(self, session: Session, overlap: Overlap) -> list[Ranked]:
        if self.renew:
            session.execute(update(Lease).where(Lease.user_id == self.user_id, Lease.image_id.in_(self.renew))
                            .values(expires_at=self.now + timedelta(seconds=leases.LEASE_SECONDS))
                            .execution_options(synchronize_session=False))
        inserted = _insert_new(session, self.inserts)
        self.one_by_one |= {row["image_id"] for row in self.inserts} - inserted
        kept = [item for item in self.chosen if item.image_id not in self.one_by_one or leases.claim(
            session, project_id=self.project_id, image_id=item.image_id, user_id=self.user_id,
            slots=overlap.slots(project_id=self.project_id, image_id=item.image_id)) is not None]
        return kept


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[int]:
    """Insert these leases in one statement; the image ids whose row went in (a taken key is skipped)."""
    if not rows:
        return set()
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(session.get_bind().dialect.name)
    if dialect is None:
        return {row["image_id"] for row in rows if leases.insert(session, **row)}
    statement = dialect.insert(Lease).values(rows).on_conflict_do_nothing().returning(Lease.image_id)
    return set(session.scalars(statement))
