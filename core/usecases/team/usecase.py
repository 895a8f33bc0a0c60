"""The team use case: users and sign-in (accounts.py), leases (release, renew), overlap, agreement,
the review queue, a reviewer's final word, and the filterable history."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from core import validation
from core.errors import InvalidInput, NotFound
from core.store import repo
from core.store.schema import User
from core.usecases.context import Context
from core.usecases.labeling import annotate
from core.usecases.labeling.states import ProjectStates
from core.usecases.labeling.suspects import find_suspects
from core.usecases.team import events, leases
from core.usecases.team.accounts import Accounts
from core.usecases.team.results import HISTORY_ACTIONS, Agreement, HistoryEntry, Overlap, Resolved, ReviewQueue

REVIEW_MAX = 500
HISTORY_MAX = 5000


class Team(Accounts):
    def __init__(self, context: Context, states: ProjectStates) -> None:
        super().__init__(context)
        self.states = states

    # -- leases and overlap -----------------------------------------------------------------------

    def renew_leases(self, annotator: str) -> int:
        """Heartbeat while the annotator works: their items stay theirs."""
        with self.context.sessions.begin() as session:
            user = repo.user_by_name(session, name=annotator)
            return 0 if user is None else leases.renew_all(session, user_id=user.id)

    def set_overlap(self, project: str, *, share: float, annotators: int = 2,
                    annotator: str | None = None) -> Overlap:
        """Send `share` of the items (0..1) to `annotators` people each, blind to each other."""
        if not 0.0 <= share <= 1.0:
            raise InvalidInput(f"overlap: a share between 0 and 1, got {share}")
        if not 2 <= annotators <= 10:
            raise InvalidInput(f"annotators: between 2 and 10 people per overlap item, got {annotators}")
        with self.context.action(project, annotator=annotator, permission="manage_projects") as act:
            row = act.project
            assert row is not None
            row.settings = {**(row.settings or {}), "overlap": share, "overlap_annotators": annotators}
            return Overlap(project=row.name, overlap=share, overlap_annotators=annotators)

    # -- agreement, review, history ---------------------------------------------------------------

    def agreement(self, project: str, *, annotator: str | None = None) -> Agreement:
        with self.context.action(project, annotator=annotator, permission="view", write=False) as act:
            return events.agreement(act.session, project_id=act.project_id)

    def review_queue(self, project: str, *, annotator: str | None = None, limit: int | None = 100) -> ReviewQueue:
        """Overlap conflicts (who said what) and label-error suspects (with who labeled them); `limit`
        1..500 of each."""
        limit = validation.capped_limit(limit, field="limit", maximum=REVIEW_MAX)
        with self.context.action(project, annotator=annotator, permission="view") as act:
            conflicts = events.conflicts(act.session, project_id=act.project_id, limit=limit)
            state = self.states.get(act.session, act.require_project())
            found = find_suspects(state, limit=limit)
            who = {r.image_id: r.annotator_id for r in repo.current_labels(act.session,
                                                                           project_id=act.project_id).values()}
            names: dict[int | None, str] = dict(act.session.execute(select(User.id, User.name)).tuples().all())
        suspects = tuple(replace(s, annotator=names.get(who.get(s.image_id, -1))) for s in found.suspects)
        return ReviewQueue(conflicts=conflicts, suspects=suspects, near_duplicates=found.near_duplicates)

    def resolve(self, project: str, *, image_id: int, label: str, annotator: str | None = None) -> Resolved:
        """A reviewer's final word on an item (conflict or suspect): recorded with source 'review'."""
        image_id = validation.record_id(image_id, field="image_id")
        with self.context.action(project, annotator=annotator, permission="review") as act:
            session, project_id = act.session, act.project_id
            label_id = annotate.class_id(session, project_id=project_id, label=label)
            annotate.check_image(session, project_id=project_id, image_id=image_id)
            current = repo.current_label(session, image_id=image_id)
            event = repo.append_event(session, project_id=project_id, image_id=image_id,
                                      annotator_id=act.annotator.id, action="review", source="review",
                                      label_before_id=current.label_id if current else None, label_after_id=label_id)
            repo.set_current_label(session, event=event)
            now = repo.current_label(session, image_id=image_id)
            assert now is not None
            now.policy = "reviewer"
            state = self.states.get(session, act.require_project())
            with state.lock:
                state.set_label(image_id, label_id)
                self.states.after_change(state)
            return Resolved(event_id=event.id, image_id=image_id, label=label, policy="reviewer")

    def history(self, project: str, *, by: str | None = None, action: str | None = None,
                image_id: int | None = None, limit: int | None = 200,
                annotator: str | None = None) -> tuple[HistoryEntry, ...]:
        """The project's events, newest first; `by`: only this annotator's; `action`: one of
        HISTORY_ACTIONS; `limit` 1..5000."""
        if action is not None and action not in HISTORY_ACTIONS:
            raise InvalidInput(f"action: unknown '{action}' (valid: {', '.join(HISTORY_ACTIONS)}, or none for all)")
        image_id = None if image_id is None else validation.record_id(image_id, field="image_id")
        limit = validation.capped_limit(limit, field="limit", maximum=HISTORY_MAX)
        with self.context.action(project, annotator=annotator, permission="view", write=False) as act:
            user_id = None
            if by is not None:
                row = repo.user_by_name(act.session, name=by)
                if row is None:
                    raise NotFound(f"user: no user named '{by}'")
                user_id = row.id
            return tuple(events.history(act.session, project_id=act.project_id, user_id=user_id, action=action,
                                        image_id=image_id, limit=limit))
