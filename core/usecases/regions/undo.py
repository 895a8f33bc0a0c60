"""Undoing a region event: the inverse change to the instance or proposal, recorded as an `undo`
event that points at the event it undoes (the history itself is never edited)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.store import regions as store
from core.store.schema import Instance, RegionEvent, RegionProposal, utcnow


def undo_region_event(session: Session, event: RegionEvent, *, user_id: int) -> dict[str, Any]:
    instance = session.get(Instance, event.instance_id) if event.instance_id else None
    proposal = session.get(RegionProposal, event.proposal_id) if event.proposal_id else None
    if event.action in ("add", "accept_proposal") and instance is not None:
        instance.deleted = True
    elif event.action == "delete" and instance is not None:
        instance.deleted = False
    elif event.action == "relabel" and instance is not None and event.label_before_id is not None:
        instance.label_id = event.label_before_id
    if instance is not None:
        instance.updated_at = utcnow()
    if event.action in ("accept_proposal", "reject_proposal") and proposal is not None:
        store.decide_proposal(session, proposal, status="open", user_id=None)
    store.add_event(session, project_id=event.project_id, image_id=event.image_id, instance_id=event.instance_id,
                    proposal_id=event.proposal_id, annotator_id=user_id, action="undo",
                    label_before_id=event.label_after_id, label_after_id=event.label_before_id,
                    undoes_event_id=event.id)
    return {"undone": event.action, "event_id": event.id, "image_id": event.image_id,
            "instance_id": event.instance_id, "proposal_id": event.proposal_id}
