"""Class lists from the command line or a file: names, or names with their own prompts."""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import InvalidInput
from core.store.repo import ClassSpec


def parse_label_list(text: str) -> list[ClassSpec]:
    names = [part.strip() for part in text.split(",")]
    return validate_classes([ClassSpec(name) for name in names if name], source="--labels")


def load_labels_file(path: str | Path) -> list[ClassSpec]:
    """A text file with one class per line, or a JSON object {class: [prompt, ...]}."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"--labels-file: cannot read '{path}': {exc.strerror or exc}") from exc
    if text.lstrip().startswith("{"):
        return _from_json(text, source=str(path))
    names = [line.strip() for line in text.splitlines()]
    return validate_classes([ClassSpec(n) for n in names if n and not n.startswith("#")], source=str(path))


def _from_json(text: str, *, source: str) -> list[ClassSpec]:
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(mapping, dict):
        raise InvalidInput(f"{source}: expected an object mapping each class to its list of prompts")
    specs = []
    for name, prompts in mapping.items():
        if isinstance(prompts, str):
            prompts = [prompts]
        if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise InvalidInput(f"{source}: class '{name}' needs a list of non-empty prompt strings")
        specs.append(ClassSpec(name.strip(), prompts=tuple(p.strip() for p in prompts) or None))
    return validate_classes(specs, source=source)


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
