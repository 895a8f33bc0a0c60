"""Editing a project's classes: add, rename, describe, merge, delete.

History stays append-only: merging or deleting a class that images carry appends one `review`
event per image (label moved to the target, or removed), and a class that events or predictions
still mention is archived rather than deleted. Functions take a session and never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core import validation
from core.errors import Conflict, InvalidInput, NotFound
from core.store import repo
from core.store.repo import ClassSpec
from core.store.schema import CurrentLabel, Event, LabelClass, Prediction
from core.usecases.projects.classes import clean_prompts
from core.usecases.projects.results import (
    ClassAdded,
    ClassDeleted,
    ClassDescribed,
    ClassesMerged,
    ClassRenamed,
    ClassUsage,
)


def find_class(session: Session, *, project_id: int, label: str) -> LabelClass:
    """The live class named exactly `label` (merge, delete, describe take existing names)."""
    classes = repo.classes_of(session, project_id=project_id)
    for c in classes:
        if c.name == label:
            return c
    raise NotFound(f"label: {validation.excerpt(str(label))} is not a class of this project "
                   f"(classes: {', '.join(c.name for c in classes)})")


def clean_name(name: object, *, field: str = "name") -> str:
    return validation.class_name(name, field=field)


def same_name(session: Session, *, project_id: int, name: str) -> list[LabelClass]:
    """The project's classes, live or archived, whose name equals `name` ignoring case (an exact
    match first)."""
    key = validation.name_key(name)
    rows = session.scalars(select(LabelClass).where(LabelClass.project_id == project_id).order_by(LabelClass.id))
    return sorted((c for c in rows if validation.name_key(c.name) == key), key=lambda c: c.name != name)


def usage(session: Session, *, class_id: int, label: str) -> ClassUsage:
    """How many images carry the class now, and how many events and predictions mention it."""
    labels = session.scalar(select(func.count()).select_from(CurrentLabel).where(CurrentLabel.label_id == class_id))
    events = session.scalar(select(func.count()).select_from(Event).where(
        or_(Event.label_before_id == class_id, Event.label_after_id == class_id)))
    predictions = session.scalar(select(func.count()).select_from(Prediction).where(Prediction.label_id == class_id))
    return ClassUsage(label=label, labels=labels or 0, events=events or 0, predictions=predictions or 0)


def add_class(session: Session, *, project_id: int, spec: ClassSpec) -> ClassAdded:
    """A new class at the end; re-adding an archived name (in any case) brings that class back
    under the name as given now. `spec` is cleaned already (classes.validate_classes' rules)."""
    name = spec.name
    archived = next(iter(same_name(session, project_id=project_id, name=name)), None)
    if archived is not None and not archived.archived:
        raise Conflict(f"name: the project already has a class '{archived.name}' (names are compared "
                       "ignoring case)")
    if archived is not None:
        archived.archived, archived.name = False, name
        archived.description, archived.prompts = spec.description, list(spec.prompts) if spec.prompts else None
        session.flush()
        return ClassAdded(label=name, restored=True)
    repo.add_classes(session, project_id=project_id, classes=[ClassSpec(name, spec.description, spec.prompts)])
    return ClassAdded(label=name, restored=False)


def rename_class(session: Session, *, project_id: int, label: str, new_name: str) -> ClassRenamed:
    row = find_class(session, project_id=project_id, label=label)
    new_name = clean_name(new_name)
    taken = [c for c in same_name(session, project_id=project_id, name=new_name) if c.id != row.id]
    if taken:
        raise Conflict(f"name: the project already has a class '{taken[0].name}' (names are compared ignoring "
                       "case; merge the two instead)")
    row.name = new_name
    session.flush()
    counts = usage(session, class_id=row.id, label=new_name)
    return ClassRenamed(label=new_name, was=label, labels=counts.labels, events=counts.events,
                        predictions=counts.predictions)


def describe_class(session: Session, *, project_id: int, label: str, description: str | None,
                   prompts: Sequence[str] | None) -> ClassDescribed:
    """Set the description and the custom prompts (empty: back to the prompt templates)."""
    row = find_class(session, project_id=project_id, label=label)
    row.description = validation.description(description)
    kept = clean_prompts(prompts)
    row.prompts = list(kept) if kept else None
    session.flush()
    return ClassDescribed(label=label, description=row.description, prompts=kept)


def merge_classes(session: Session, *, project_id: int, source: str, target: str, user_id: int) -> ClassesMerged:
    """Move every image labeled `source` to `target` (one event each), then retire `source`."""
    if source == target:
        raise InvalidInput(f"target: merging '{source}' into itself changes nothing; choose another class")
    src = find_class(session, project_id=project_id, label=source)
    dst = find_class(session, project_id=project_id, label=target)
    moved = _relabel(session, project_id=project_id, class_id=src.id, to=dst.id, user_id=user_id)
    archived = _retire(session, src)
    return ClassesMerged(source=source, target=target, moved=moved, archived=archived)


def delete_class(session: Session, *, project_id: int, label: str, user_id: int) -> ClassDeleted:
    """Unlabel the images that carry the class (one event each), then retire it."""
    row = find_class(session, project_id=project_id, label=label)
    if len(repo.classes_of(session, project_id=project_id)) == 1:
        raise Conflict(f"label: '{label}' is the project's only class; add another before deleting it")
    unlabeled = _relabel(session, project_id=project_id, class_id=row.id, to=None, user_id=user_id)
    archived = _retire(session, row)
    return ClassDeleted(label=label, unlabeled=unlabeled, archived=archived)


def _relabel(session: Session, *, project_id: int, class_id: int, to: int | None, user_id: int) -> int:
    rows = list(session.scalars(select(CurrentLabel).where(CurrentLabel.project_id == project_id,
                                                           CurrentLabel.label_id == class_id)))
    for current in rows:
        event = repo.append_event(session, project_id=project_id, image_id=current.image_id, annotator_id=user_id,
                                  action="review", source="review", label_before_id=class_id, label_after_id=to)
        repo.set_current_label(session, event=event)
    session.flush()
    return len(rows)


def _retire(session: Session, row: LabelClass) -> bool:
    """Archive when history mentions the class (returns True); delete it otherwise."""
    counts = usage(session, class_id=row.id, label=row.name)
    if counts.events or counts.predictions or counts.labels:
        row.archived = True
        session.flush()
        return True
    session.delete(row)
    session.flush()
    return False
