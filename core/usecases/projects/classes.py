"""Class lists from the command line or a file: names, or names with their own prompts."""

from __future__ import annotations

from pathlib import Path

from core import validation
from core.errors import InvalidInput
from core.store.repo import ClassSpec


def parse_label_list(text: str, *, field: str = "--labels") -> list[ClassSpec]:
    """Comma-separated class names, each checked by validation.class_name; names equal ignoring case
    are refused (validation.unique_name), and so is a list longer than a labels file may be."""
    names: list[str] = []
    for position, part in enumerate(part for part in text.split(",") if part.strip()):
        if position >= validation.LABELS_FILE_MAX_CLASSES:
            raise InvalidInput(f"{field}: more than {validation.LABELS_FILE_MAX_CLASSES:,} classes")
        name = validation.class_name(part, field=f"{field}: class {position + 1}")
        names.append(validation.unique_name(name, names, field=field))
    if not names:
        raise InvalidInput(f"{field}: no class names given; e.g. \"cat,dog,bird\"")
    return [ClassSpec(name) for name in names]


def load_labels_file(path: str | Path) -> list[ClassSpec]:
    """The classes of a labels file (validation.parse_labels_file: one class per line, a JSON object
    {class: [prompt, ...]} or a JSON list of names), as the store's ClassSpecs."""
    return [ClassSpec(spec.name, description=spec.description, prompts=spec.prompts)
            for spec in validation.parse_labels_file(path)]


def validate_classes(specs: list[ClassSpec], *, source: str) -> list[ClassSpec]:
    if not specs:
        raise InvalidInput(f"{source}: no class names given")
    seen: set[str] = set()
    for spec in specs:
        if len(spec.name) > 200:
            raise InvalidInput(f"{source}: class name too long (200 characters at most): '{spec.name[:40]}...'")
        if spec.name in seen:
            raise InvalidInput(f"{source}: class '{spec.name}' is listed twice")
        seen.add(spec.name)
    return specs
