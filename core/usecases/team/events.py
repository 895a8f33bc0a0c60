"""Team labeling on top of the event log: who labeled what, the final-label policy, agreement,
conflicts for review, and the filterable history. Functions take a session and never commit."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.labeling.agreement import cohen_kappa, confusion, final_label, fleiss_kappa
from core.store import repo
from core.store.schema import CurrentLabel, Event, RegionEvent, User
from core.usecases.team.results import (
    REGION_HISTORY,
    Agreement,
    Conflict,
    HistoryEntry,
    PairAgreement,
    PersonAgreement,
    Vote,
)

VOTES = ("accept", "correct", "review")


def votes_by_image(
    session: Session, *, project_id: int, image_ids: list[int] | None = None,
) -> dict[int, dict[int, Event]]:
    """image -> user -> that user's latest labeling event (undone ones left out)."""
    events = repo.events_of(session, project_id=project_id, image_ids=image_ids)
    undone = {e.undoes_event_id for e in events if e.action == "undo"}
    out: dict[int, dict[int, Event]] = defaultdict(dict)
    for event in events:
        if (event.action in VOTES and event.id not in undone and event.annotator_id is not None
                and event.label_after_id is not None):
            out[event.image_id][event.annotator_id] = event
    return out


def _voted(event: Event) -> int:
    """The label of a vote (votes_by_image keeps only events with one)."""
    assert event.label_after_id is not None
    return event.label_after_id


def _name(names: dict[int, str], label_id: int | None) -> str | None:
    return None if label_id is None else names.get(label_id)


OVERLAP_REASON = "overlap: another opinion"


def needs_opinion(holders: list[tuple[int, bool]], *, user_id: int, slots: int) -> bool:
    """An overlap item somebody finished that still needs another person's blind opinion (not this
    user's own): (holder, done) of each of its leases."""
    done = sum(finished for _, finished in holders)
    return 0 < done < slots and all(holder != user_id for holder, _ in holders)


def apply_policy(session: Session, *, project_id: int, image_id: int) -> str:
    """Set the image's current label by the policy reviewer > majority > single; record which."""
    votes = votes_by_image(session, project_id=project_id, image_ids=[image_id]).get(image_id, {})
    roles: dict[int | None, str] = dict(session.execute(select(User.id, User.role)).tuples().all())
    ordered = sorted(votes.values(), key=lambda e: e.id)
    label, policy = final_label([("reviewer" if e.action == "review" else roles.get(e.annotator_id, "annotator"),
                                  _voted(e)) for e in ordered])
    row = session.get(CurrentLabel, image_id)
    if row is None:
        return policy
    if label is not None:
        winner = [e for e in ordered if e.label_after_id == label][-1]
        repo.set_current_label(session, event=winner)
    row.policy = policy
    session.flush()
    return policy


def agreement(session: Session, *, project_id: int) -> Agreement:
    classes = repo.classes_of(session, project_id=project_id, include_archived=True)
    index = {c.id: k for k, c in enumerate(classes)}
    names = dict(session.execute(select(User.id, User.name)).all())
    votes = {i: v for i, v in votes_by_image(session, project_id=project_id).items() if len(v) >= 2}
    people = sorted({u for v in votes.values() for u in v})
    pairs: list[PairAgreement] = []
    for a, b in combinations(people, 2):
        both = [(_voted(v[a]), _voted(v[b])) for v in votes.values() if a in v and b in v]
        if not both:
            continue
        la = np.array([index[x] for x, _ in both])
        lb = np.array([index[y] for _, y in both])
        pairs.append(PairAgreement(annotators=[names[a], names[b]], items=len(both),
                                   cohen_kappa=cohen_kappa(la, lb, num_classes=len(classes)),
                                   confusion=confusion(la, lb, num_classes=len(classes)).tolist()))
    counts = np.zeros((len(votes), len(classes)), dtype=np.int64)
    for row, v in enumerate(votes.values()):
        for event in v.values():
            counts[row, index[_voted(event)]] += 1
    current = repo.current_labels(session, project_id=project_id)
    per_person: dict[str, PersonAgreement] = {}
    for person in people:
        mine = [(i, _voted(v[person])) for i, v in votes.items() if person in v and i in current]
        agree = sum(1 for i, label in mine if current[i].label_id == label)
        per_person[names[person]] = PersonAgreement(items=len(mine),
                                                    agreement_with_final=agree / len(mine) if mine else None)
    return Agreement(classes=[c.name for c in classes], overlap_items=len(votes), pairs=pairs,
                     fleiss_kappa=fleiss_kappa(counts) if len(votes) else None, annotators=per_person)


def conflicts(session: Session, *, project_id: int, limit: int = 200) -> tuple[Conflict, ...]:
    rows = session.scalars(select(CurrentLabel).where(CurrentLabel.project_id == project_id,
                                                      CurrentLabel.policy == "conflict").limit(limit)).all()
    votes = votes_by_image(session, project_id=project_id, image_ids=[r.image_id for r in rows])
    names = dict(session.execute(select(User.id, User.name)).all())
    classes = repo.class_names(session, project_id=project_id)
    return tuple(Conflict(image_id=r.image_id,
                          votes=tuple(Vote(annotator=names.get(u), label=_name(classes, e.label_after_id),
                                           at=e.created_at.isoformat()) for u, e in votes[r.image_id].items()))
                 for r in rows)




def history(
    session: Session, *, project_id: int, user_id: int | None = None, action: str | None = None,
    image_id: int | None = None, limit: int = 200,
) -> list[HistoryEntry]:
    """Image decisions and region actions together, newest first (region event ids are 'r<id>')."""
    names = dict(session.execute(select(User.id, User.name)).all())
    classes = repo.class_names(session, project_id=project_id)
    regional = {v: k for k, v in REGION_HISTORY.items()}
    found: list[tuple[Any, HistoryEntry]] = []
    if action is None or action not in regional:
        query = _filtered(select(Event).where(Event.project_id == project_id), Event, user_id, action, image_id)
        found += [(e.created_at, _image_row(e, names, classes))
                  for e in session.scalars(query.order_by(Event.id.desc()).limit(limit))]
    if action is None or action in regional:
        query = _filtered(select(RegionEvent).where(RegionEvent.project_id == project_id), RegionEvent, user_id,
                          regional.get(action or ""), image_id)
        found += [(e.created_at, _region_row(e, names, classes))
                  for e in session.scalars(query.order_by(RegionEvent.id.desc()).limit(limit))]
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [row for _, row in found[:limit]]


def _filtered(query: Any, table: Any, user_id: int | None, action: str | None, image_id: int | None) -> Any:
    if user_id is not None:
        query = query.where(table.annotator_id == user_id)
    if action is not None:
        query = query.where(table.action == action)
    if image_id is not None:
        query = query.where(table.image_id == image_id)
    return query


def _image_row(e: Event, names: dict[Any, Any], classes: dict[int, str]) -> HistoryEntry:
    return HistoryEntry(event_id=e.id, at=e.created_at.isoformat(), annotator=names.get(e.annotator_id),
                        action=e.action, source=e.source, image_id=e.image_id,
                        before=_name(classes, e.label_before_id), after=_name(classes, e.label_after_id),
                        undoes=e.undoes_event_id)


def _region_row(e: RegionEvent, names: dict[Any, Any], classes: dict[int, str]) -> HistoryEntry:
    return HistoryEntry(event_id=f"r{e.id}", at=e.created_at.isoformat(), annotator=names.get(e.annotator_id),
                        action=REGION_HISTORY[e.action], source="region", image_id=e.image_id,
                        before=_name(classes, e.label_before_id), after=_name(classes, e.label_after_id),
                        undoes=None if e.undoes_event_id is None else f"r{e.undoes_event_id}",
                        instance_id=e.instance_id, proposal_id=e.proposal_id, reason=e.reason)
