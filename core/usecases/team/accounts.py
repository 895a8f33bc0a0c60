"""Users and sign-in: logins (throttled, the same argon2 work whether or not the name exists),
who a web session belongs to, the check every web call makes (still enabled? which role now?),
adding, disabling and re-roling users, and the sign-in log an admin reads."""

from __future__ import annotations

import secrets
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import validation
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from core.store import repo
from core.store.schema import AuthEvent as AuthEventRow
from core.store.schema import User
from core.usecases.context import Context
from core.usecases.team import auth, leases
from core.usecases.team.results import AuthEvent, Login, Me, RoleChanged, UserAdded, UserDisabled, UserInfo
from core.usecases.team.sessions import WebSessions
from core.usecases.team.throttle import LoginThrottle, keys_of

AUTH_EVENTS_MAX = 1000


class Accounts:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.throttle = LoginThrottle(context.settings.login)
        self.sessions = WebSessions()
        self._dummy_lock = threading.Lock()
        self._dummy: str | None = None

    def team_mode(self) -> bool:
        with self.context.read_sessions.begin() as session:
            return repo.team_mode(session)

    # -- signing in -------------------------------------------------------------------------------

    def authenticate(self, name: str, password: str) -> bool:
        return self.login(name, password).accepted

    def login(self, name: str, password: str, *, address: str | None = None) -> Login:
        """One login attempt, throttled per name and per client address. Unknown, password-less and
        disabled users cost the same argon2 verification as a wrong password, so the answer's time
        does not tell which names exist."""
        keys = keys_of(name, address)
        refusal, locked = self.throttle.admit(keys)
        if refusal is not None:
            self._lockouts(name, address, locked)
            return Login(accepted=False, message=refusal.message(), retry_after=refusal.wait)
        if self._verify(name, password):
            self.throttle.succeeded(keys)
            return Login(accepted=True)
        locked = self.throttle.failed(keys)
        with self.context.sessions.begin() as session:
            _log(session, "login-failed", name, address=address)
        self._lockouts(name, address, locked)
        return Login(accepted=False, message="incorrect name or password")

    def _verify(self, name: str, password: str) -> bool:
        with self.context.read_sessions.begin() as session:
            user = repo.user_by_name(session, name=name)
            stored = None if user is None else user.password_hash
            enabled = user is not None and not user.disabled
        return auth.verify_password(stored or self._dummy_hash(), password) and stored is not None and enabled

    def _dummy_hash(self) -> str:
        """A hash of a random secret, made once per service: what a name without a hash is checked against."""
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = auth.hash_password(secrets.token_urlsafe(24))
            return self._dummy

    def _lockouts(self, name: str, address: str | None, locked: list[tuple[str, str]]) -> None:
        if not locked:
            return
        minutes = self.context.settings.login.lockout_s / 60
        with self.context.sessions.begin() as session:
            for kind, value in locked:
                _log(session, "login-locked", name, address=address,
                     detail=f"{kind} {value} locked for {minutes:g} minutes")

    # -- web sessions -----------------------------------------------------------------------------

    def signed_in(self, name: str, *, session: str | None = None) -> Me:
        """Every web call: the user is still known and enabled, with their role as it is now (a role
        change counts from the next call). A disabled user's session is signed out: PermissionDenied,
        and their items go back to the pool."""
        with self.context.read_sessions.begin() as db:
            user = repo.user_by_name(db, name=name)
            state = None if user is None else (user.role, user.disabled)
            team = repo.team_mode(db)
        if state is None and team:
            self._sign_out(name, session, "unknown user")
            raise PermissionDenied(f"signed out: there is no user '{name}' any more; log in again")
        if state is not None and state[1]:
            self._sign_out(name, session, "disabled")
            raise PermissionDenied(f"signed out: user '{name}' was disabled by an admin")
        self.sessions.remember(session, name)
        role = "admin" if state is None else state[0]
        return Me(user=name, role=role, team=team, admin=role == "admin")

    def _sign_out(self, name: str, session: str | None, why: str) -> None:
        known = self.sessions.forget(session) is not None
        with self.context.sessions.begin() as db:
            user = repo.user_by_name(db, name=name)
            if user is not None:
                leases.release_all(db, user_id=user.id)
            if known:
                _log(db, "signed-out", name, detail=why)

    def close_session(self, session: str | None, *, name: str | None = None) -> int:
        """A page closed (or a client disconnected): forget the session and give back the items of
        its user (`name`, else whoever the session belonged to). Never raises for an unknown session."""
        remembered = self.sessions.forget(session)
        user = name or remembered or (None if self.team_mode() else self.context.settings.user)
        return 0 if user is None else self.release_leases(user)

    def release_leases(self, annotator: str, project: str | None = None) -> int:
        """Logout or tab closed: every item this annotator held goes back to the pool now."""
        with self.context.sessions.begin() as session:
            user = repo.user_by_name(session, name=annotator)
            if user is None:
                return 0
            project_id = self.context.project(session, project).id if project else None
            return leases.release_all(session, user_id=user.id, project_id=project_id)

    # -- managing users ---------------------------------------------------------------------------

    def whoami(self, *, annotator: str | None = None) -> Me:
        if annotator is not None:
            return self.signed_in(annotator)
        with self.context.read_sessions.begin() as session:
            return Me(user=self.context.settings.user, role="admin", team=repo.team_mode(session), admin=True)

    def add_user(self, name: str, *, role: str, password: str, annotator: str | None = None) -> UserAdded:
        name = validation.user_name(name, field="name")
        if any(c.isspace() for c in name):
            raise InvalidInput(f"name: {validation.excerpt(name)} has spaces; a user name is one word")
        role, password = auth.check_role(role), validation.password(password)
        with self.context.action(None, annotator=annotator, permission="manage_users") as act:
            known = repo.user_by_name(act.session, name=name)
            if known is not None and known.password_hash is not None:
                raise Conflict(f"name: a user named '{name}' already exists")
            user = repo.get_or_create_user(act.session, name=name, role=role)
            user.role, user.password_hash, user.disabled = role, auth.hash_password(password), False
            _log(act.session, "user-added", name, detail=f"role {role}, by {act.annotator.name}")
            return UserAdded(name=user.name, role=user.role)

    def list_users(self, *, annotator: str | None = None) -> tuple[UserInfo, ...]:
        with self.context.action(None, annotator=annotator, permission="manage_users", write=False) as act:
            return tuple(UserInfo(name=u.name, role=u.role, disabled=u.disabled, password=u.password_hash is not None,
                                  created_at=u.created_at.isoformat())
                         for u in act.session.scalars(select(User).order_by(User.name)))

    def disable_user(self, name: str, *, annotator: str | None = None) -> UserDisabled:
        """The user may no longer act: their live sessions are signed out on their next call, and
        every item they hold goes back to the pool now."""
        with self.context.action(None, annotator=annotator, permission="manage_users") as act:
            user = _user(act.session, name)
            user.disabled = True
            released = leases.release_all(act.session, user_id=user.id)
            _log(act.session, "user-disabled", name, detail=f"by {act.annotator.name}")
            return UserDisabled(name=name, disabled=True, leases_released=released)

    def set_role(self, name: str, role: str, *, annotator: str | None = None) -> RoleChanged:
        """Another role for a user; it counts from their next call. The last enabled admin stays one."""
        role = auth.check_role(role)
        with self.context.action(None, annotator=annotator, permission="manage_users") as act:
            user = _user(act.session, name)
            before = user.role
            if before == "admin" and role != "admin" and _admins(act.session) <= 1:
                raise Conflict(f"role: '{name}' is the only enabled admin; make someone else admin first")
            user.role = role
            _log(act.session, "role-changed", name, detail=f"{before} -> {role}, by {act.annotator.name}")
            return RoleChanged(name=name, role=role, before=before)

    def auth_events(self, *, limit: int | None = 200, annotator: str | None = None) -> tuple[AuthEvent, ...]:
        """The sign-in log, newest first (admins)."""
        limit = validation.capped_limit(limit, field="limit", maximum=AUTH_EVENTS_MAX)
        with self.context.action(None, annotator=annotator, permission="manage_users", write=False) as act:
            rows = act.session.scalars(select(AuthEventRow).order_by(AuthEventRow.id.desc()).limit(limit))
            return tuple(AuthEvent(id=r.id, at=r.created_at.isoformat(), kind=r.kind, user=r.user_name,
                                   address=r.address, detail=r.detail) for r in rows)


def _user(session: Session, name: str) -> User:
    user = repo.user_by_name(session, name=name)
    if user is None:
        known = ", ".join(session.scalars(select(User.name).order_by(User.name).limit(20))) or "none"
        raise NotFound(f"name: no user named {validation.excerpt(name)} (users: {known})")
    return user


def _admins(session: Session) -> int:
    return len(session.scalars(select(User.id).where(User.role == "admin", User.disabled.is_(False),
                                                     User.password_hash.is_not(None))).all())


def _log(session: Session, kind: str, name: str, *, address: str | None = None, detail: str | None = None) -> None:
    session.add(AuthEventRow(kind=kind, user_name=name[:100], address=address and address[:100], detail=detail))
