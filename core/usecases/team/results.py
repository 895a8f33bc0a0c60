"""What the team use case answers: frozen dataclasses (a TypedDict for the agreement report, a
free-form JSON document of matrices and per-person figures). Times are ISO strings. The web app
and the CLI import these, never the modules behind them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from core.usecases.results import DECISIONS, NearDuplicate, Suspect

REGION_HISTORY = {"add": "region-add", "delete": "region-delete", "relabel": "region-relabel",
                  "accept_proposal": "region-accept", "reject_proposal": "region-reject", "undo": "region-undo"}
HISTORY_ACTIONS = (*DECISIONS, "undo", "review", "import", *REGION_HISTORY.values())
AUTH_EVENTS = ("login-failed", "login-locked", "signed-out", "user-added", "user-disabled", "role-changed")

__all__ = [
    "AUTH_EVENTS", "HISTORY_ACTIONS", "REGION_HISTORY", "Agreement", "AuthEvent", "Conflict", "HistoryEntry",
    "Login", "Me", "Overlap", "PairAgreement",
    "PersonAgreement", "Resolved", "ReviewQueue", "RoleChanged", "UserAdded", "UserDisabled", "UserInfo",
    "Vote",
]


@dataclass(frozen=True)
class Me:
    """Who is acting, whether logins are on, and whether they may manage users (the Users tab)."""

    user: str
    role: str
    team: bool
    admin: bool


@dataclass(frozen=True)
class Login:
    """The answer to one login attempt. `message` says why it was refused; `retry_after` (seconds)
    is set when the name or the address is throttled or locked."""

    accepted: bool
    message: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    disabled: bool
    password: bool
    created_at: str


@dataclass(frozen=True)
class UserAdded:
    name: str
    role: str


@dataclass(frozen=True)
class UserDisabled:
    name: str
    disabled: bool
    leases_released: int


@dataclass(frozen=True)
class RoleChanged:
    name: str
    role: str
    before: str


@dataclass(frozen=True)
class AuthEvent:
    """One row of the sign-in log: failed logins, lockouts, signed-out sessions, user changes."""

    id: int
    at: str
    kind: str
    user: str
    address: str | None
    detail: str | None


@dataclass(frozen=True)
class Overlap:
    project: str
    overlap: float
    overlap_annotators: int


class PairAgreement(TypedDict):
    annotators: list[str]
    items: int
    cohen_kappa: float
    confusion: list[list[int]]     # rows: the first annotator's labels, in `classes` order


class PersonAgreement(TypedDict):
    items: int
    agreement_with_final: float | None


class Agreement(TypedDict):
    classes: list[str]
    overlap_items: int
    pairs: list[PairAgreement]
    fleiss_kappa: float | None
    annotators: dict[str, PersonAgreement]


@dataclass(frozen=True)
class Vote:
    annotator: str | None
    label: str | None
    at: str


@dataclass(frozen=True)
class Conflict:
    """An overlap item whose annotators disagree (a tie): who said what."""

    image_id: int
    votes: tuple[Vote, ...]


@dataclass(frozen=True)
class ReviewQueue:
    conflicts: tuple[Conflict, ...]
    suspects: tuple[Suspect, ...]
    near_duplicates: tuple[NearDuplicate, ...]


@dataclass(frozen=True)
class Resolved:
    event_id: int
    image_id: int
    label: str
    policy: str


@dataclass(frozen=True)
class HistoryEntry:
    """One event of the history: an image decision (`event_id` an int) or a region action (`'r<id>'`)."""

    event_id: int | str
    at: str
    annotator: str | None
    action: str
    source: str
    image_id: int
    before: str | None
    after: str | None
    undoes: int | str | None
    instance_id: int | None = None
    proposal_id: int | None = None
    reason: str | None = None          # why a reviewer or admin changed someone else's instance
