"""Instances: saving a mask with its class, relabeling, deleting, and who may change whose.

Region edits follow the ownership rule of image decisions: an annotator may not change an instance
another person drew on an image that person is labeling now (holds a live lease on); reviewers and
admins may, and their edit is a region event like any other (who, when, before, after), with the
reason they give (at most 500 characters, checked like a description by core.validation)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from core import validation
from core.errors import Conflict, InvalidInput, NotFound
from core.segment.masks import mask_bbox, rle_encode
from core.store import regions as store
from core.store import repo
from core.store.schema import Instance, User, utcnow
from core.usecases.context import Action
from core.usecases.regions.results import ImageInfo, InstanceInfo
from core.usecases.team import auth

REASON_MAX = 500  # region_events.reason is String(500)


def instance_info(row: Instance, label: str | None) -> InstanceInfo:
    return InstanceInfo(id=row.id, image_id=row.image_id, label=label, bbox=tuple(round(v, 1) for v in row.bbox),
                        area=row.area, score=row.score, label_confidence=row.label_confidence, source=row.source,
                        deleted=row.deleted)


def save(action: Action, image: ImageInfo, mask: np.ndarray, *, label_id: int, score: float,
         confidence: float | None, prompts: dict[str, Any], segmenter_id: str) -> Instance:
    """A mask drawn by the acting annotator becomes an instance (and an `add` event)."""
    row = store.add_instance(
        action.session, project_id=image.project_id, image_id=image.image_id, label_id=label_id,
        rle=rle_encode(mask), bbox=mask_bbox(mask), area=int(mask.sum()), score=score,
        label_confidence=confidence, source="click", prompts=prompts, segmenter_id=segmenter_id,
        annotator_id=action.annotator.id)
    store.add_event(action.session, project_id=image.project_id, image_id=image.image_id, instance_id=row.id,
                    annotator_id=action.annotator.id, action="add", label_after_id=label_id)
    return row


def checked_reason(value: object) -> str | None:
    """A reason as stored: NFC, stripped, line breaks and tabs kept, no other control or format
    characters, at most 500 characters; None, '' or only spaces give None."""
    if isinstance(value, str) and len(value) > 4 * REASON_MAX:  # NFC shrinks at most 4x: too long either way
        raise InvalidInput(f"reason: {len(value):,} characters; at most {REASON_MAX}")
    text = validation.description(value, field="reason")
    if text is not None and len(text) > REASON_MAX:
        raise InvalidInput(f"reason: {len(text):,} characters; at most {REASON_MAX}")
    return text


def editable(action: Action, instance_id: int) -> Instance:
    """A live instance of the action's project that the acting annotator may change."""
    instance_id = validation.record_id(instance_id, field="instance_id")
    row = store.instance(action.session, project_id=action.project_id, instance_id=instance_id)
    if row is None or row.deleted:
        name = action.project.name if action.project is not None else "?"
        raise NotFound(f"instance: no instance #{instance_id} in project '{name}'")
    check_owner(action.session, row, action.annotator)
    return row


def check_owner(session: Session, row: Instance, user: User) -> None:
    """Conflict when an annotator would change what someone else drew on an image they hold."""
    owner = row.annotator_id
    if owner is None or owner == user.id or auth.allowed(user.role, "review"):
        return
    if store.holds_live_lease(session, image_id=row.image_id, user_id=owner):
        drawer = session.get(User, owner)
        who = drawer.name if drawer is not None else f"user #{owner}"
        raise Conflict(f"instance: #{row.id} was drawn by {who}, who is labeling image #{row.image_id} now; "
                       "only they, a reviewer or an admin may change it until they finish")


def relabel(action: Action, row: Instance, label_id: int, *, reason: str | None = None) -> None:
    before = row.label_id
    row.label_id, row.annotator_id = label_id, action.annotator.id   # the class is now theirs
    _touched(action, row, "relabel", reason=reason, label_before_id=before, label_after_id=label_id)


def delete(action: Action, row: Instance, *, reason: str | None = None) -> None:
    row.deleted = True
    _touched(action, row, "delete", reason=reason, label_before_id=row.label_id)


def _touched(action: Action, row: Instance, name: str, *, reason: str | None, **labels: int | None) -> None:
    row.updated_at = utcnow()
    store.add_event(action.session, project_id=row.project_id, image_id=row.image_id, instance_id=row.id,
                    annotator_id=action.annotator.id, action=name, reason=reason, **labels)


def live_instances(action: Action, image: ImageInfo) -> list[tuple[Instance, str | None]]:
    """The image's live instances in drawing order, with their class names."""
    names = repo.class_names(action.session, project_id=action.project_id)
    rows = store.instances_of_image(action.session, image_id=image.image_id)
    return [(row, names.get(row.label_id)) for row in rows if row.project_id == action.project_id]
