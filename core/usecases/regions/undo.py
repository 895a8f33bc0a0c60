"""Undoing a region event: the inverse change to the instance or proposal, recorded as an `undo`
event that points at the event it undoes (the history itself is never edited)."""

from __future__ import annotations

from core.errors import Conflict
from core.store import regions as store
from core.store.schema import Instance, RegionEvent, RegionProposal, utcnow
from core.usecases.context import Action
from core.usecases.regions.results import UndoResult


def undo_latest(action: Action) -> UndoResult:
    """Undo the acting annotator's latest region action (add, delete, relabel, accept or reject)."""
    event = store.latest_undoable(action.session, project_id=action.project_id, annotator_id=action.annotator.id)
    if event is None:
        raise Conflict("undo: you have no region action left to undo in this project")
    return undo_event(action, event)


def undo_event(action: Action, event: RegionEvent) -> UndoResult:
    session = action.session
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
                    proposal_id=event.proposal_id, annotator_id=action.annotator.id, action="undo",
                    label_before_id=event.label_after_id, label_after_id=event.label_before_id,
                    undoes_event_id=event.id)
    return UndoResult(undone=event.action, event_id=event.id, image_id=event.image_id,
                      instance_id=event.instance_id, proposal_id=event.proposal_id)
