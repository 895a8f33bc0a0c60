"""The team use case: users (add, list, disable, sign in), leases (release, renew), overlap,
agreement, the review queue, a reviewer's final word, and the filterable history."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from sqlalchemy import select

from core.errors import InvalidInput, NotFound
from core.store import repo
from core.store.schema import User
from core.usecases.context import Context
from core.usecases.labeling import annotate
from core.usecases.labeling.states import ProjectStates
from core.usecases.labeling.suspects import find_suspects
from core.usecases.team import auth, events, leases


class Team:
    def __init__(self, context: Context, states: ProjectStates) -> None:
        self.context = context
        self.states = states

    # -- users ------------------------------------------------------------------------------------

    def team_mode(self) -> bool:
        with self.context.read_sessions.begin() as session:
            return repo.team_mode(session)

    def authenticate(self, name: str, password: str) -> bool:
        with self.context.read_sessions.begin() as session:
            user = repo.user_by_name(session, name=name)
            return bool(user and not user.disabled and auth.verify_password(user.password_hash, password))

    def add_user(self, name: str, *, role: str, password: str, annotator: str | None = None) -> dict[str, Any]:
        name = name.strip()
        if not name or len(name) > 100 or any(c.isspace() for c in name):
            raise InvalidInput("name: 1 to 100 characters, no spaces")
        with self.context.action(None, annotator=annotator, permission="manage_users") as act:
            known = repo.user_by_name(act.session, name=name)
            if known is not None and known.password_hash is not None:
                raise InvalidInput(f"name: a user named '{name}' already exists")
            user = repo.get_or_create_user(act.session, name=name, role=auth.check_role(role))
            user.role, user.password_hash, user.disabled = role, auth.hash_password(password), False
            return {"name": user.name, "role": user.role}

    def list_users(self, *, annotator: str | None = None) -> list[dict[str, Any]]:
        with self.context.action(None, annotator=annotator, permission="manage_users") as act:
            return [{"name": u.name, "role": u.role, "disabled": u.disabled, "password": u.password_hash is not None,
                     "created_at": u.created_at.isoformat()}
                    for u in act.session.scalars(select(User).order_by(User.name))]

    def disable_user(self, name: str, *, annotator: str | None = None) -> dict[str, Any]:
        with self.context.action(None, annotator=annotator, permission="manage_users") as act:
            user = repo.user_by_name(act.session, name=name)
            if user is None:
                raise NotFound(f"name: no user named '{name}'")
            user.disabled = True
            released = leases.release_all(act.session, user_id=user.id)
            return {"name": name, "disabled": True, "leases_released": released}

    # -- leases and overlap -----------------------------------------------------------------------

    def release_leases(self, annotator: str, project: str | None = None) -> int:
        """Logout or tab closed: every item this annotator held goes back to the pool now."""
        with self.context.sessions.begin() as session:
            user = repo.user_by_name(session, name=annotator)
            if user is None:
                return 0
            project_id = self.context.project(session, project).id if project else None
            return leases.release_all(session, user_id=user.id, project_id=project_id)

    def renew_leases(self, annotator: str) -> int:
        """Heartbeat while the annotator works: their items stay theirs."""
        with self.context.sessions.begin() as session:
            user = repo.user_by_name(session, name=annotator)
            return 0 if user is None else leases.renew_all(session, user_id=user.id)

    def set_overlap(self, project: str, *, share: float, annotators: int = 2,
                    annotator: str | None = None) -> dict[str, Any]:
        """Send `share` of the items (0..1) to `annotators` people each, blind to each other."""
        if not 0.0 <= share <= 1.0:
            raise InvalidInput(f"overlap: a share between 0 and 1, got {share}")
        if not 2 <= annotators <= 10:
            raise InvalidInput(f"annotators: between 2 and 10 people per overlap item, got {annotators}")
        with self.context.action(project, annotator=annotator, permission="manage_projects") as act:
            row = act.project
            assert row is not None
            row.settings = {**(row.settings or {}), "overlap": share, "overlap_annotators": annotators}
            return {"project": row.name, "overlap": share, "overlap_annotators": annotators}

    # -- agreement, review, history ---------------------------------------------------------------

    def agreement(self, project: str, *, annotator: str | None = None) -> dict[str, Any]:
        with self.context.action(project, annotator=annotator, permission="view", write=False) as act:
            return events.agreement(act.session, project_id=act.project_id)

    def review_queue(self, project: str, *, annotator: str | None = None, limit: int = 100) -> dict[str, Any]:
        """Overlap conflicts (who said what) and label-error suspects (with who labeled them)."""
        with self.context.action(project, annotator=annotator, permission="view") as act:
            conflicts = events.conflicts(act.session, project_id=act.project_id, limit=limit)
            state = self.states.get(act.session, act.project)  # type: ignore[arg-type]
            found = find_suspects(state, limit=limit)
            who = {r.image_id: r.annotator_id for r in repo.current_labels(act.session,
                                                                           project_id=act.project_id).values()}
            names = dict(act.session.execute(select(User.id, User.name)).tuples().all())
        suspects = [asdict(replace(s, annotator=names.get(who.get(s.image_id, -1)))) for s in found.suspects]
        return {"conflicts": conflicts, "suspects": suspects,
                "near_duplicates": [asdict(d) for d in found.near_duplicates]}

    def resolve(self, project: str, *, image_id: int, label: str, annotator: str | None = None) -> dict[str, Any]:
        """A reviewer's final word on an item (conflict or suspect): recorded with source 'review'."""
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
            state = self.states.get(session, act.project)  # type: ignore[arg-type]
            with state.lock:
                state.set_label(image_id, label_id)
                self.states.after_change(state)
            return {"event_id": event.id, "image_id": image_id, "label": label, "policy": "reviewer"}

    def history(self, project: str, *, by: str | None = None, action: str | None = None,
                image_id: int | None = None, limit: int = 200, annotator: str | None = None) -> list[dict[str, Any]]:
        """The project's events, newest first; `by`: only this annotator's."""
        with self.context.action(project, annotator=annotator, permission="view", write=False) as act:
            user_id = None
            if by is not None:
                row = repo.user_by_name(act.session, name=by)
                if row is None:
                    raise NotFound(f"user: no user named '{by}'")
                user_id = row.id
            return events.history(act.session, project_id=act.project_id, user_id=user_id, action=action,
                                  image_id=image_id, limit=min(max(limit, 1), 5000))
