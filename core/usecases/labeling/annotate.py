"""Human decisions: accept, correct, skip, undo; each one an appended event, committed before the
caller hears back. Also rebuilds a project's live state (core.queue) from the store."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput, NotFound
from core.store import repo
from core.store.schema import CurrentLabel, Event, Image, LabelClass, ServedItem
from core.usecases.labeling.queue import ProjectState

LABELING_ACTIONS = ("accept", "correct", "import", "review")
DECISIONS = ("accept", "correct", "skip")
ACCEPTED_SOURCE = "model-accepted"  # the source of labels taken by "accept the rest"


def build_state(
    session: Session, *, project_id: int, model_id: str | None,
    head_for: Callable[[list[LabelClass]], tuple[np.ndarray, float] | None], strategy: str | None = None,
) -> ProjectState:
    classes = repo.classes_of(session, project_id=project_id)
    if model_id:
        image_ids, embeddings = repo.load_embeddings(session, project_id=project_id, model_id=model_id)
    else:
        image_ids, embeddings = np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    head = head_for(classes) if model_id and len(image_ids) else None
    every_one_embedded = repo.image_count(session, project_id=project_id) == len(image_ids)  # an index count
    all_ids = image_ids if every_one_embedded else repo.image_ids_of(session, project_id=project_id)
    state = ProjectState(
        project_id=project_id, model_id=model_id, label_ids=[c.id for c in classes], image_ids=image_ids,
        embeddings=embeddings, head=None if head is None else head[0],
        logit_scale=100.0 if head is None else head[1], labels=np.full(len(image_ids), -1, dtype=np.int64),
        unembedded=np.setdiff1d(all_ids, image_ids, assume_unique=True).tolist(), labeled_unembedded=set(), skipped={},
        strategy_override=strategy, class_names=repo.class_names(session, project_id=project_id),
    )
    for image_id, current in repo.current_labels(session, project_id=project_id).items():
        state.set_label(image_id, current.label_id, accepted=current.source == ACCEPTED_SOURCE)
    state.held_out = set(session.scalars(select(ServedItem.image_id).where(ServedItem.project_id == project_id,
                                                                         ServedItem.audit.is_(True))))
    for order, image_id in enumerate(_skipped(session, project_id=project_id)):
        if not state.is_labeled(image_id):
            state.skip(image_id, order)
    state.refit()
    return state


def _skipped(session: Session, *, project_id: int) -> list[int]:
    """Images whose latest skip is not undone, in the order of those skips."""
    events = repo.events_of(session, project_id=project_id)
    undone = {e.undoes_event_id for e in events if e.action == "undo"}
    last: dict[int, int] = {}
    for event in events:
        if event.action == "skip" and event.id not in undone:
            last[event.image_id] = event.id
    return [image_id for image_id, _ in sorted(last.items(), key=lambda kv: kv[1])]


def class_id(session: Session, *, project_id: int, label: str) -> int:
    classes = repo.classes_of(session, project_id=project_id)
    for c in classes:
        if c.name == label:
            return c.id
    raise NotFound(f"label: '{label}' is not a class of this project (classes: {', '.join(c.name for c in classes)})")


def check_image(session: Session, *, project_id: int, image_id: int) -> Image:
    """The image, row-locked for this transaction on PostgreSQL (SQLite's BEGIN IMMEDIATE already
    serialises writers), so concurrent decisions on one image take turns: no lost current label."""
    image = session.scalar(select(Image).where(Image.id == image_id).with_for_update())
    if image is None or image.project_id != project_id or image.status != "ok":
        raise NotFound(f"image_id: no image {image_id} in this project")
    return image


def record_decision(
    session: Session, *, project_id: int, image_id: int, action: str, label_id: int | None, user_id: int,
) -> Event:
    if action not in DECISIONS:
        raise InvalidInput(f"action: unknown '{action}' (valid: {', '.join(DECISIONS)})")
    check_image(session, project_id=project_id, image_id=image_id)
    return append_decision(session, project_id=project_id, image_id=image_id, action=action, label_id=label_id,
                           user_id=user_id, current=repo.current_label(session, image_id=image_id))


def append_decision(
    session: Session, *, project_id: int, image_id: int, action: str, label_id: int | None, user_id: int,
    current: CurrentLabel | None,
) -> Event:
    """The decision's event (and the new current label) for an image already checked, whose current
    label the caller has read."""
    before = current.label_id if current else None
    after = before if action == "skip" else label_id
    if action != "skip" and after is None:
        raise InvalidInput(f"label: '{action}' needs a label")
    event = repo.append_event(session, project_id=project_id, image_id=image_id, annotator_id=user_id,
                              action=action, source="human", label_before_id=before, label_after_id=after)
    if action != "skip":
        repo.write_current_label(session, event=event, row=current)
    return event


def undo_last(session: Session, *, project_id: int, user_id: int) -> tuple[Event, Event]:
    """Undo this user's latest decision that is not undone yet. Refused when someone else has
    changed that image since: undo never undoes another person's work. Queries only this user's
    latest decision and that image's later events, not the project's whole history."""
    undone = repo.undone_events(project_id=project_id)
    target = session.scalar(
        select(Event).where(Event.project_id == project_id, Event.annotator_id == user_id,
                            Event.action.in_(DECISIONS), Event.id.not_in(undone))
        .order_by(Event.id.desc()).limit(1))
    if target is None:
        raise Conflict("undo: you have no decision left to undo in this project")
    later = session.scalar(
        select(Event.id).where(Event.image_id == target.image_id, Event.id > target.id,
                               Event.action.in_(LABELING_ACTIONS), Event.id.not_in(undone))
        .order_by(Event.id.desc()).limit(1))
    if later is not None:
        raise Conflict(f"undo: image {target.image_id} was labeled again since (event {later}); "
                       "undo refused so that nobody else's work is undone")
    current = repo.current_label(session, image_id=target.image_id)
    undo = repo.append_event(
        session, project_id=project_id, image_id=target.image_id, annotator_id=user_id, action="undo",
        source="human", label_before_id=current.label_id if current else None,
        label_after_id=target.label_before_id, undoes_event_id=target.id,
    )
    restore_current(session, image_id=target.image_id)
    return target, undo


def restore_current(session: Session, *, image_id: int) -> None:
    """Point current_labels at the latest labeling event of the image that is not undone."""
    events = session.scalars(select(Event).where(Event.image_id == image_id).order_by(Event.id)).all()
    undone = {e.undoes_event_id for e in events if e.action == "undo"}
    alive = [e for e in events if e.action in LABELING_ACTIONS and e.id not in undone]
    if alive:
        repo.set_current_label(session, event=alive[-1])
        return
    row = repo.current_label(session, image_id=image_id)
    if row is not None:
        session.delete(row)
        session.flush()
