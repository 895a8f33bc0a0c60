"""Users, passwords and roles. Checks live here, in the service layer, not only in the UI.

Roles are ordered: annotator < reviewer < admin. Each permission names the least role it needs."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import InvalidInput, PermissionDenied

ROLES = ("annotator", "reviewer", "admin")
PERMISSIONS = {
    "label": "annotator",           # next items, accept, correct, skip, undo own decisions
    "view": "annotator",            # dashboard, search, grid
    "review": "reviewer",           # resolve conflicts and label-error suspects
    "manage_projects": "admin",     # create projects, edit classes, import, embed, predict
    "export": "admin",
    "manage_users": "admin",
}
MIN_PASSWORD = 8


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"--role: unknown '{role}' (valid: {', '.join(ROLES)})")
    return role


def allowed(role: str, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise InvalidInput(f"permission: unknown '{permission}' (valid: {', '.join(PERMISSIONS)})")
    return ROLES.index(role) >= ROLES.index(PERMISSIONS[permission])


def require(*, user: str, role: str, permission: str) -> None:
    if not allowed(role, permission):
        raise PermissionDenied(f"{user} ({role}) may not {permission.replace('_', ' ')}: "
                               f"it needs the role {PERMISSIONS[permission]} or higher")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters")
    return PasswordHasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    if not stored_hash:
        return False
    try:
        return PasswordHasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
