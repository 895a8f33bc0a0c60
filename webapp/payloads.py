"""The one place the web app turns a use case's answer into JSON for its API: frozen dataclasses,
TypedDicts, tuples and paths become plain dicts, lists and strings (core's `jsonable`, which the
CLI prints through too)."""

from __future__ import annotations

from typing import Any

from core.usecases.results import jsonable

__all__ = ["to_json"]


def to_json(value: Any) -> Any:
    """`value` (a result dataclass, a TypedDict, a tuple of them, ...) as JSON-ready values."""
    return jsonable(value)
