"""What every use case shares: settings, the engine, and one transaction per user action that
resolves the project and the acting annotator (checked for the permission) once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.errors import NotFound, PermissionDenied
from core.store import repo
from core.store.db import make_engine, make_sessionmaker, read_only
from core.store.migrate import upgrade
from core.store.schema import CurrentLabel, Image, Project, User
from core.usecases.team import auth


@dataclass(frozen=True)
class LockedImage:
    """An image read (row-locked on PostgreSQL) with its current label, in the action's first query."""

    row: Image
    current: CurrentLabel | None


@dataclass(frozen=True)
class Action:
    """One user action's transaction: the session, the project (None when none was named) and the
    acting annotator, already checked for the action's permission."""

    session: Session
    project: Project | None
    annotator: User
    image: LockedImage | None = None  # the image the action is about, when it named one and it was found

    @property
    def project_id(self) -> int:
        if self.project is None:
            raise NotFound("--project: this action needs a project")
        return self.project.id

    def require_project(self) -> Project:
        """The project row, for actions that named one (the type checker's `Project`, not `| None`)."""
        if self.project is None:
            raise NotFound("--project: this action needs a project")
        return self.project


class Context:
    """The engine, the two session factories and the acting-annotator rules. Made in main()."""

    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self.settings = settings
        self.engine = make_engine(settings.db)
        if migrate:
            upgrade(self.engine)
        folder = settings.resolved_vector_dir()
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine, vector_folder=folder)
        self.read_sessions: sessionmaker[Session] = make_sessionmaker(read_only(self.engine), vector_folder=folder)
        self._known_users: set[str] = set()  # users exist for good (they are disabled, never deleted)
        self._known_lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def action(self, project: str | None, *, annotator: str | None, permission: str,
               write: bool = True, image_id: int | None = None) -> Iterator[Action]:
        """One transaction for one user action (committed on leaving, rolled back on an error).
        Read-only actions (`write=False`) use a deferred transaction, so they never wait for the
        SQLite write lock. `image_id`: the image the action is about, read with its current label
        (row-locked on PostgreSQL) in the same first query as the annotator and the project."""
        if not write:
            self._ensure_user(annotator)
        factory = self.sessions if write else self.read_sessions
        with factory.begin() as session:
            found = None if project is None else self._both(session, project, annotator, image_id)
            if found is not None and (annotator is None or self._may(found[0], permission)):
                yield Action(session=session, project=found[1], annotator=found[0], image=found[2])
                return
            user = self.annotator(session, annotator, permission)
            row = None if project is None else self.project(session, project)
            yield Action(session=session, project=row, annotator=user)

    def _ensure_user(self, name: str | None) -> None:
        """Create, in a short write transaction of its own, the user a read-only action would otherwise
        create inside its deferred one (the local operator; anyone before team mode): a deferred
        SQLite transaction that writes fails with "database is locked" when another writer was first."""
        key = self.settings.user if name is None else name
        with self._known_lock:
            if key in self._known_users:
                return
        with self.read_sessions.begin() as session:
            missing = repo.user_by_name(session, name=key) is None
            creates = missing and (name is None or not repo.team_mode(session))
        if creates:
            try:
                with self.sessions.begin() as session:
                    repo.get_or_create_user(session, name=key, role="admin")
            except IntegrityError:
                pass  # another request created it meanwhile
        if not missing or creates:
            with self._known_lock:
                self._known_users.add(key)

    def _both(self, session: Session, project: str, annotator: str | None,
              image_id: int | None = None) -> tuple[User, Project, LockedImage | None] | None:
        """The annotator and the project (and the image with its current label) in one query, the
        common case; None when any is missing (the caller then finds out which, and says so)."""
        name = self.settings.user if annotator is None else annotator
        if image_id is None:
            row = session.execute(select(User, Project).join(Project, true())
                                  .where(User.name == name, Project.name == project)).first()
            return None if row is None else (row[0], row[1], None)
        both = session.execute(
            select(User, Project, Image, CurrentLabel).select_from(User).join(Project, true())
            .join(Image, (Image.id == image_id) & (Image.project_id == Project.id))
            .outerjoin(CurrentLabel, CurrentLabel.image_id == Image.id)
            .where(User.name == name, Project.name == project).with_for_update(of=Image)).first()
        return None if both is None else (both[0], both[1], LockedImage(both[2], both[3]))

    @staticmethod
    def _may(user: User, permission: str) -> bool:
        return not user.disabled and auth.allowed(user.role, permission)

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
