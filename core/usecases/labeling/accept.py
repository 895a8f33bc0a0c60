"""Accept the rest: the remaining pseudo-labels (optionally only above a confidence threshold)
become labels with source `model-accepted`, one event per image, all in one recorded bulk action
(accept_batches) that one undo reverses."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput
from core.labeling import estimate as est
from core.store import repo
from core.store.schema import AcceptBatch, CurrentLabel, Event, ServedItem, utcnow
from core.usecases.labeling.annotate import ACCEPTED_SOURCE, DECISIONS
from core.usecases.labeling.estimates import Scored, interval
from core.usecases.labeling.queue import ProjectState
from core.usecases.labeling.results import Accepted, AcceptPreview

CHUNK = 1000


def check_fraction(value: float | None, *, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise InvalidInput(f"{field}: a number between 0 and 1, got {value!r}")
    return float(value)


def preview(scored: Scored, *, min_confidence: float | None, target_accuracy: float | None) -> AcceptPreview:
    """How many pool images would be accepted and the estimated accuracy of exactly those."""
    floor = check_fraction(min_confidence, field="min_confidence") or 0.0
    target = check_fraction(target_accuracy, field="target_accuracy")
    threshold = floor
    if target is not None:
        keep = scored.confidence >= floor
        chosen = est.choose_threshold(scored.confidence[keep], scored.correct[keep],
                                      scored.skipped_confidence[scored.skipped_confidence >= floor], target=target,
                                      shrink=scored.shrink)
        if chosen is None:
            best = est.estimate(scored.correct, skipped=scored.skipped_confidence.size)
            raise InvalidInput(
                f"target_accuracy: no confidence threshold reaches {target:.2%} at the low end of its 95% interval "
                f"with {best.answered} answered audits (all remaining: {best.low:.1%} to {best.high:.1%}); "
                "label more (the queue serves audits as you go) or lower the target")
        threshold = max(floor, chosen[0])
    found = est.above(scored.confidence, scored.correct, scored.skipped_confidence, threshold=threshold,
                      shrink=scored.shrink)
    return AcceptPreview(images=int((scored.pool_confidence >= threshold).sum()), min_confidence=threshold,
                         target_accuracy=target, accuracy=interval(found), model_version=scored.model_version)


def accept(session: Session, state: ProjectState, plan: AcceptPreview, *, project_id: int,
           user_id: int, expect_images: int | None = None) -> tuple[Accepted, list[tuple[int, int]]]:
    """Record the batch: one `accept` event per image (source model-accepted) and its current label.
    Returns the result and the (image_id, label_id) pairs for the live state. With `expect_images`
    (the count someone confirmed), a different count now refuses the whole batch (Conflict)."""
    labeled = set(session.scalars(select(CurrentLabel.image_id).where(CurrentLabel.project_id == project_id)))
    audits = set(session.scalars(select(ServedItem.image_id).where(ServedItem.project_id == project_id,
                                                                   ServedItem.audit.is_(True))))
    with state.lock:
        assert state.probs is not None
        pool = state.pool_rows()
        probs = state.probs[pool]
        keep = probs.max(axis=1) >= plan.min_confidence
        pairs = [(int(i), state.label_ids[int(j)]) for i, j in
                 zip(state.image_ids[pool[keep]], probs[keep].argmax(axis=1), strict=True) if int(i) not in labeled]
        # the audits this batch's threshold would have taken: from now on they describe what was accepted
        covered = sorted(i for i in audits if i in state.position
                         and float(state.probs[state.position[i]].max()) >= plan.min_confidence)
    if expect_images is not None and len(pairs) != expect_images:
        raise Conflict(f"accept_rest: the preview you confirmed counted {expect_images:,} images; "
                       f"{len(pairs):,} would be accepted now (labels or the classifier changed since): "
                       "nothing was accepted; preview again")
    acc = plan.accuracy
    batch = AcceptBatch(project_id=project_id, user_id=user_id, images=len(pairs), min_confidence=plan.min_confidence,
                        estimate=acc.value, low=acc.low, high=acc.high, model_version=plan.model_version,
                        covered_audits=covered)
    session.add(batch)
    session.flush()
    now = utcnow()
    for start in range(0, len(pairs), CHUNK):
        _insert(session, pairs[start:start + CHUNK], project_id=project_id, user_id=user_id, batch_id=batch.id,
                now=now)
    return Accepted(batch_id=batch.id, images=len(pairs), min_confidence=plan.min_confidence, accuracy=acc), pairs


def _insert(session: Session, pairs: list[tuple[int, int]], *, project_id: int, user_id: int, batch_id: int,
            now: object) -> None:
    events = session.execute(insert(Event).returning(Event.id, Event.image_id, Event.label_after_id), [
        {"project_id": project_id, "image_id": i, "annotator_id": user_id, "action": "accept",
         "source": ACCEPTED_SOURCE, "label_before_id": None, "label_after_id": label, "batch_id": batch_id,
         "created_at": now} for i, label in pairs]).all()
    session.execute(insert(CurrentLabel), [
        {"image_id": i, "project_id": project_id, "label_id": label, "source": ACCEPTED_SOURCE,
         "annotator_id": user_id, "event_id": event_id, "updated_at": now} for event_id, i, label in events])


def latest_batch(session: Session, *, project_id: int, user_id: int) -> int | None:
    """The bulk action this user's latest decision not undone yet belongs to (None: a single one)."""
    undone = repo.undone_events(project_id=project_id)
    return session.scalar(select(Event.batch_id).where(
        Event.project_id == project_id, Event.annotator_id == user_id, Event.action.in_(DECISIONS),
        Event.id.not_in(undone)).order_by(Event.id.desc()).limit(1))


def undo_batch(session: Session, *, project_id: int, user_id: int, batch_id: int) -> tuple[Event, list[int]]:
    """Undo every event of the batch (one undo event each); the current label goes back to none
    where the accepted label is still current (an image labeled since keeps its later label).
    Returns the last undo event and the images whose label was removed."""
    undone = repo.undone_events(project_id=project_id)
    targets = session.execute(select(Event.id, Event.image_id, Event.label_after_id).where(
        Event.batch_id == batch_id, Event.id.not_in(undone))).all()
    current = set(session.scalars(select(CurrentLabel.event_id).where(
        CurrentLabel.project_id == project_id, CurrentLabel.source == ACCEPTED_SOURCE)))
    now = utcnow()
    for start in range(0, len(targets), CHUNK):
        session.execute(insert(Event), [
            {"project_id": project_id, "image_id": i, "annotator_id": user_id, "action": "undo", "source": "human",
             "label_before_id": label if e in current else None, "label_after_id": None, "undoes_event_id": e,
             "created_at": now} for e, i, label in targets[start:start + CHUNK]])
    removed = [i for e, i, _ in targets if e in current]
    ids = [e for e, _, _ in targets if e in current]
    for start in range(0, len(ids), CHUNK):
        session.execute(delete(CurrentLabel).where(CurrentLabel.event_id.in_(ids[start:start + CHUNK])))
    last = session.scalars(select(Event).where(Event.project_id == project_id, Event.action == "undo")
                           .order_by(Event.id.desc()).limit(1)).one()
    return last, removed


def standing_skips(session: Session, *, project_id: int, image_ids: list[int]) -> dict[int, int]:
    """image_id -> its latest skip event not undone, for these images (the queue's skip order)."""
    undone = repo.undone_events(project_id=project_id)
    found: dict[int, int] = {}
    for start in range(0, len(image_ids), CHUNK):
        found.update(session.execute(select(Event.image_id, func.max(Event.id)).where(
            Event.project_id == project_id, Event.action == "skip", Event.image_id.in_(image_ids[start:start + CHUNK]),
            Event.id.not_in(undone)).group_by(Event.image_id)).tuples().all())
    return found
