"""What every use case shares: settings, the engine, and one transaction per user action that
resolves the project and the acting annotator (checked for the permission) once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core import auth
from core.config import Settings
from core.errors import NotFound, PermissionDenied
from core.store import repo
from core.store.db import make_engine, make_sessionmaker, read_only
from core.store.migrate import upgrade
from core.store.schema import Project, User


@dataclass(frozen=True)
class Action:
    """One user action's transaction: the session, the project (None when none was named) and the
    acting annotator, already checked for the action's permission."""

    session: Session
    project: Project | None
    annotator: User

    @property
    def project_id(self) -> int:
        if self.project is None:
            raise NotFound("--project: this action needs a project")
        return self.project.id


class Context:
    """The engine, the two session factories and the acting-annotator rules. Made in main()."""

    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self.settings = settings
        self.engine = make_engine(settings.db)
        if migrate:
            upgrade(self.engine)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.read_sessions: sessionmaker[Session] = make_sessionmaker(read_only(self.engine))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def action(self, project: str | None, *, annotator: str | None, permission: str,
               write: bool = True) -> Iterator[Action]:
        """One transaction for one user action (committed on leaving, rolled back on an error).
        Read-only actions (`write=False`) use a deferred transaction, so they never wait for the
        SQLite write lock."""
        factory = self.sessions if write else self.read_sessions
        with factory.begin() as session:
            user = self.annotator(session, annotator, permission)
            row = None if project is None else self.project(session, project)
            yield Action(session=session, project=row, annotator=user)

    def project(self, session: Session, name: str) -> Project:
        row = repo.project_by_name(session, name=name)
        if row is None:
            known = ", ".join(repo.project_names(session)) or "none yet; create one with `clipmark init`"
            raise NotFound(f"--project: no project named '{name}' (projects: {known})")
        return row

    def annotator(self, session: Session, name: str | None, permission: str) -> User:
        """The acting annotator, checked. `None` is the trusted local caller (the CLI, which has the
        database file anyway): it acts as settings.user. Before any password exists (single-user
        mode) everyone is an admin; in team mode only known, enabled users act, within their role."""
        if name is None:
            return repo.get_or_create_user(session, name=self.settings.user, role="admin")
        user = repo.user_by_name(session, name=name)
        if user is None:
            if repo.team_mode(session):
                raise PermissionDenied(f"unknown user '{name}': an admin adds users with `clipmark user add`")
            user = repo.get_or_create_user(session, name=name, role="admin")
        if user.disabled:
            raise PermissionDenied(f"user '{name}' is disabled")
        auth.require(user=name, role=user.role, permission=permission)
        return user
