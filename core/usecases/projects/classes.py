"""Class lists from the command line or a file: names, or names with their own prompts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core import validation
from core.errors import InvalidInput
from core.store.repo import ClassSpec

MAX_PROMPTS = 100


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
    """A new project's classes, each cleaned: name (validation.class_name, none equal to another
    ignoring case), description (validation.description) and prompts (clean_prompts)."""
    if not specs:
        raise InvalidInput(f"{source}: no class names given")
    if len(specs) > validation.LABELS_FILE_MAX_CLASSES:
        raise InvalidInput(f"{source}: {len(specs):,} classes; at most {validation.LABELS_FILE_MAX_CLASSES:,}")
    names: list[str] = []
    for position, spec in enumerate(specs):
        name = validation.class_name(spec.name, field=f"{source}: class {position + 1}")
        names.append(validation.unique_name(name, names, field=source))
    return [ClassSpec(name, validation.description(spec.description, field=f"{source}: {name} description"),
                      clean_prompts(spec.prompts, field=f"{source}: {name} prompts"))
            for name, spec in zip(names, specs, strict=True)]


def clean_prompts(prompts: Sequence[str] | None, *, field: str = "prompts") -> tuple[str, ...] | None:
    """Each prompt through validation.prompt (blank ones dropped), at most MAX_PROMPTS; None when
    none is left (the class then uses the prompt templates)."""
    if isinstance(prompts, str | bytes):
        raise InvalidInput(f"{field}: expected a list of prompts, got one text; give one prompt per line")
    given = [p for p in prompts or () if not (isinstance(p, str) and not p.strip())]
    if len(given) > MAX_PROMPTS:
        raise InvalidInput(f"{field}: {len(given):,} prompts; at most {MAX_PROMPTS} per class")
    return tuple(validation.prompt(p, field=f"{field}: prompt {k + 1}") for k, p in enumerate(given)) or None
