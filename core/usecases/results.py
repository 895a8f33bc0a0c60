"""What the use cases answer: frozen dataclasses (TypedDicts where a free-form JSON document fits
better), and the vocabularies the front ends offer (actions, roles, export choices). The web app
imports these, never the modules behind them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any, TypedDict

from core.export.escaping import markdown_text
from core.export.formats import FORMATS as EXPORT_FORMATS
from core.export.label_import import IMPORT_FORMATS
from core.export.options import MASKS
from core.export.records import INCLUDES, STATUSES
from core.usecases.labeling.annotate import DECISIONS, LABELING_ACTIONS
from core.usecases.team.auth import ROLES

FORMATS = tuple(EXPORT_FORMATS)

__all__ = [
    "DECISIONS", "FORMATS", "IMPORT_FORMATS", "INCLUDES", "LABELING_ACTIONS", "MASKS",
    "ROLES", "STATUSES", "Decided", "Decision", "Guess", "Item", "NearDuplicate", "Progress", "Reason",
    "Suspect", "Suspects", "Undone", "jsonable", "markdown_text",
]


def jsonable(value: Any) -> Any:
    """A result as JSON-ready values: dataclasses and mappings become dicts, tuples and lists lists,
    paths strings, times ISO strings; anything else is returned as it is. The CLI and the web app
    both print through it."""
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: jsonable(getattr(value, field.name)) for field in fields(value)}
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [jsonable(item) for item in value]
    if isinstance(value, PurePath):
        return str(value)
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class Guess:
    """One class the model proposes for an image, with its probability."""

    label: str | None
    confidence: float


@dataclass(frozen=True)
class Reason:
    """Why the queue offers an item: the strategy that picked it and its score."""

    strategy: str
    score: float


@dataclass(frozen=True)
class Item:
    """One image as the labeling queue shows it."""

    image_id: int
    path: str
    file_path: str
    sha256: str | None
    top: tuple[Guess, ...]
    reason: Reason | None = None
    label: str | None = None          # its current label (item(); None in the queue)


@dataclass(frozen=True)
class Decision:
    event_id: int
    image_id: int
    action: str
    label: str | None
    model_version: str | None
    update_seconds: float


@dataclass(frozen=True)
class Decided:
    """A decision and what to show next (one transaction)."""

    decision: Decision
    next: tuple[Item, ...]


@dataclass(frozen=True)
class Undone:
    event_id: int
    undid: int
    image_id: int
    action: str
    label: str | None
    images: int = 1      # more when the undone decision was a bulk "accept the rest" (all of it is undone)


@dataclass(frozen=True)
class Progress:
    labeled: int
    images: int
    embedded: int
    skipped: int
    strategy: str
    model_version: str | None


@dataclass(frozen=True)
class Suspect:
    """A human label the out-of-fold model contradicts."""

    image_id: int
    label: str | None
    suggested: str | None
    p_suggested: float
    p_label: float
    score: float
    annotator: str | None = None


@dataclass(frozen=True)
class NearDuplicate:
    image_ids: tuple[int, int]
    labels: tuple[str | None, str | None]
    cosine: float


@dataclass(frozen=True)
class Suspects:
    suspects: tuple[Suspect, ...]
    near_duplicates: tuple[NearDuplicate, ...]


class ReviewQueue(TypedDict):
    conflicts: list[dict[str, Any]]
    suspects: list[dict[str, Any]]
    near_duplicates: list[dict[str, Any]]
