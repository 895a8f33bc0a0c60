"""One place where values from people are checked: names, descriptions, passwords, ids, list sizes,
and class lists read from a labels file.

Every function returns the cleaned value or raises InvalidInput (Conflict for a name already taken)
whose message names the field. Names are Unicode NFC, stripped, 1..100 characters, with no control,
format (zero-width, bidi overrides), private-use, surrogate or line/paragraph-separator characters.
Ids are integers: Python ints, or strings of ASCII decimal digits (what a CLI argument or a web text
field delivers); floats (even 1.0), bools and anything else are refused. Callers pass `field`, the
name a person knows the value by (`--project`, `class`, `image_id`), so the message points at it."""

from __future__ import annotations

import json
import numbers
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.errors import Conflict, InvalidInput

NAME_MAX = 100
DESCRIPTION_MAX = 2000
PROMPT_MAX = 500
PASSWORD_MAX = 1024
ID_MAX = 2**63 - 1                 # SQLite and PostgreSQL bigint
LABELS_FILE_MAX_BYTES = 10 << 20
LABELS_FILE_MAX_CLASSES = 10_000
FORBIDDEN_CATEGORIES = {
    "Cc": "control character", "Cf": "format character (zero-width or text-direction)",
    "Co": "private-use character", "Cs": "surrogate", "Zl": "line separator", "Zp": "paragraph separator",
}
EXCERPT = 40


def excerpt(value: str) -> str:
    """A short, printable rendering of a value for an error message (never the whole of a 1 MB input)."""
    short = value[:EXCERPT]
    shown = "".join(c if unicodedata.category(c) not in FORBIDDEN_CATEGORIES else f"\\u{ord(c):04x}" for c in short)
    return f"'{shown}'" + ("..." if len(value) > EXCERPT else "")


def _text(value: object, *, field: str, maximum: int, allowed: frozenset[str] = frozenset()) -> str:
    """NFC, no forbidden characters (except `allowed`), at most `maximum` characters; not stripped."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: expected text, got {type(value).__name__}")
    if len(value) > 4 * maximum:  # NFC shrinks a string by at most 4x: refuse a 1 MB value unread
        raise InvalidInput(f"{field}: {len(value):,} characters; at most {maximum:,}")
    text = unicodedata.normalize("NFC", value)
    for position, char in enumerate(text):
        kind = FORBIDDEN_CATEGORIES.get(unicodedata.category(char))
        if kind and char not in allowed:
            raise InvalidInput(f"{field}: contains a {kind} U+{ord(char):04X} at position {position + 1} "
                               f"in {excerpt(text)}; remove it")
    if len(text) > maximum:
        raise InvalidInput(f"{field}: {len(text):,} characters; at most {maximum:,}")
    return text


def _name(value: object, *, field: str, maximum: int = NAME_MAX) -> str:
    name = _text(value, field=field, maximum=maximum).strip()
    if not name:
        raise InvalidInput(f"{field}: empty (or only spaces); give a name")
    return name


def project_name(value: object, *, field: str = "project") -> str:
    return _name(value, field=field)


def class_name(value: object, *, field: str = "class") -> str:
    return _name(value, field=field)


def user_name(value: object, *, field: str = "user") -> str:
    return _name(value, field=field)


def description(value: object, *, field: str = "description") -> str | None:
    """Stripped; None or only spaces gives None. Line breaks and tabs are kept."""
    if value is None:
        return None
    text = _text(value, field=field, maximum=DESCRIPTION_MAX, allowed=frozenset("\n\t")).strip()
    return text or None


def prompt(value: object, *, field: str = "prompt") -> str:
    return _name(value, field=field, maximum=PROMPT_MAX)


def password(value: object, *, field: str = "password") -> str:
    """Returned exactly as given (not stripped or normalised: a login compares the same string);
    refused when empty, only whitespace, longer than 1,024 characters, or holding control characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: expected text, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{field}: empty or only whitespace; choose a password with visible characters")
    if len(value) > PASSWORD_MAX:
        raise InvalidInput(f"{field}: {len(value):,} characters; at most {PASSWORD_MAX:,}")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidInput(f"{field}: contains a control character; use printable characters only")
    return value


def record_id(value: object, *, field: str = "id") -> int:
    """A positive integer: an int (not a bool) or a string of ASCII digits. 1.5, 1.0, True, '1.0',
    '-1', ' 1', '１' (full-width) are refused."""
    number = _integer(value, field=field, what="a whole number (an id)")
    if not 1 <= number <= ID_MAX:
        raise InvalidInput(f"{field}: {number} is not a valid id (ids are 1 to {ID_MAX})")
    return number


def whole_number(value: object, *, field: str, minimum: int, maximum: int) -> int:
    """An index or count in minimum..maximum, given as an int or ASCII digits (1.5 is refused, not
    rounded)."""
    number = _integer(value, field=field, what=f"a whole number from {minimum} to {maximum}")
    if not minimum <= number <= maximum:
        raise InvalidInput(f"{field}: {number} is out of range; give {minimum} to {maximum}")
    return number


def _integer(value: object, *, field: str, what: str) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    shown = excerpt(value) if isinstance(value, str) else f"{type(value).__name__} {repr(value)[:EXCERPT]}"
    raise InvalidInput(f"{field}: expected {what}, got {shown}")


def capped_limit(limit: object, *, field: str = "limit", maximum: int) -> int:
    """A `limit` argument: None means `maximum`; otherwise a whole number 1..maximum. Over the cap is
    an error, not silently fewer rows."""
    if limit is None:
        return maximum
    number = _integer(limit, field=field, what=f"a whole number from 1 to {maximum:,}")
    if not 1 <= number <= maximum:
        raise InvalidInput(f"{field}: {number} is out of range; give 1 to {maximum:,}")
    return number


def unique_ids(ids: object, *, field: str = "ids", maximum: int = 500) -> list[int]:
    """Ids in first-seen order without repeats; each checked by record_id; more than `maximum`
    distinct ids is an error (repeats do not count)."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise InvalidInput(f"{field}: expected a list of ids, got {type(ids).__name__}")
    seen: dict[int, None] = {}
    for position, value in enumerate(ids):
        seen[record_id(value, field=f"{field}[{position}]")] = None
        if len(seen) > maximum:
            raise InvalidInput(f"{field}: more than {maximum:,} different ids in one call; send at most "
                               f"{maximum:,} at a time")
    return list(seen)


def name_key(name: str) -> str:
    """What two names are compared by: NFC and case folded (`Cat`, `CAT`, `cat` are one name)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def unique_name(name: str, existing: Iterable[str], *, field: str) -> str:
    """`name` unless one of `existing` equals it ignoring case (a rename passes the others only)."""
    key = name_key(name)
    for other in existing:
        if name_key(other) == key:
            raise Conflict(f"{field}: {excerpt(name)} is already taken by {excerpt(other)} (names are "
                           "compared ignoring case); choose another name")
    return name


@dataclass(frozen=True)
class LabelSpec:
    """One class of a labels file; `prompts` None means the default prompt templates."""

    name: str
    description: str | None = None
    prompts: tuple[str, ...] | None = None


def parse_labels_file(path: str | Path) -> list[LabelSpec]:
    """The classes of an `init --labels-file`: a text file with one class per line (blank lines and
    `# comments` skipped), or JSON (a `.json` file, or text starting with `{` or `[`) that is either an
    object {"class": ["prompt", ...], ...} (an empty list: the default prompts) or a list of class
    names ["cat", "dog"]. Anything else is an InvalidInput naming the file and what was expected."""
    path = Path(path)
    text = _read_labels_file(path)
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
        specs = _labels_from_json(text, source=str(path))
    else:
        specs = _labels_from_lines(text, source=str(path))
    return _distinct_classes(specs, source=str(path))


def _read_labels_file(path: Path) -> str:
    try:
        if path.stat().st_size > LABELS_FILE_MAX_BYTES:
            raise InvalidInput(f"{path}: a labels file is at most {LABELS_FILE_MAX_BYTES >> 20} MB")
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the labels file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {exc.start}); save the labels file as UTF-8") from exc


def _labels_from_lines(text: str, *, source: str) -> list[LabelSpec]:
    return [LabelSpec(class_name(line, field=f"{source} line {number}"))
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")]


EXPECTED_JSON = 'a JSON object {"class": ["prompt", ...]} or a JSON list of class names ["cat", "dog"]'


class _Object(list):  # type: ignore[type-arg]
    """A JSON object kept as its (key, value) pairs, so a class given twice is seen, not lost."""


JSON_TYPES = {_Object: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
              bool: "true/false", type(None): "null"}


def _labels_from_json(text: str, *, source: str) -> list[LabelSpec]:
    try:
        data = json.loads(text, object_pairs_hook=_Object)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}); expected "
                           f"{EXPECTED_JSON}") from exc
    if isinstance(data, _Object):
        return [_spec_with_prompts(name, prompts, source=source) for name, prompts in data]
    if type(data) is list:
        return [LabelSpec(_listed_name(item, position, source=source)) for position, item in enumerate(data)]
    raise InvalidInput(f"{source}: expected {EXPECTED_JSON}; got {JSON_TYPES.get(type(data), 'something else')}")


def _listed_name(item: object, position: int, *, source: str) -> str:
    if not isinstance(item, str):
        raise InvalidInput(f"{source}: item {position + 1} of the list is {_json_type(item)}; expected a "
                           "class name string (for prompts use an object {\"class\": [\"prompt\", ...]})")
    return class_name(item, field=f"{source}: item {position + 1}")


def _spec_with_prompts(name: str, prompts: object, *, source: str) -> LabelSpec:
    name = class_name(name, field=f"{source}: class name")
    where = f"{source}: class {excerpt(name)}"
    if type(prompts) is not list:
        raise InvalidInput(f"{where} has {_json_type(prompts)}; expected a list of prompt strings "
                           '(e.g. ["a photo of a cat."]; [] for the default prompts)')
    for position, item in enumerate(prompts):
        if not isinstance(item, str):
            raise InvalidInput(f"{where}: prompt {position + 1} is {_json_type(item)}; expected a string")
    cleaned = tuple(prompt(item, field=f"{where}: prompt {k + 1}") for k, item in enumerate(prompts))
    return LabelSpec(name, prompts=cleaned or None)


def _json_type(value: object) -> str:
    return JSON_TYPES.get(type(value), "something else")


def _distinct_classes(specs: list[LabelSpec], *, source: str) -> list[LabelSpec]:
    if not specs:
        raise InvalidInput(f"{source}: no class names; give at least one class")
    if len(specs) > LABELS_FILE_MAX_CLASSES:
        raise InvalidInput(f"{source}: {len(specs):,} classes; at most {LABELS_FILE_MAX_CLASSES:,}")
    seen: dict[str, str] = {}
    for spec in specs:
        key = name_key(spec.name)
        if key in seen:
            raise InvalidInput(f"{source}: class {excerpt(spec.name)} is listed twice (also as "
                               f"{excerpt(seen[key])}; names are compared ignoring case)")
        seen[key] = spec.name
    return specs
