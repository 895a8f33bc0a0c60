"""File names as text that is safe to store, print and show.

On POSIX a file name is bytes; Python decodes the bytes that are not UTF-8 into lone surrogates
(PEP 383), which no database driver, terminal or JSON encoder accepts. Every name that leaves
``core.io`` goes through :func:`display_name`: undecodable bytes and control characters become
U+FFFD, so one odd name costs at most a replacement character, never the import.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPLACEMENT = "\ufffd"
# Lone surrogates (undecodable bytes), C0/C1 controls (NUL, newline, ESC...) and DEL.
_UNSAFE_CHARACTERS = re.compile("[\ud800-\udfff\x00-\x1f\x7f-\x9f]")


def display_name(text: str | os.PathLike[str]) -> str:
    """`text` with every undecodable byte and control character replaced by U+FFFD."""
    return _UNSAFE_CHARACTERS.sub(REPLACEMENT, os.fspath(text))


def is_storable(path: Path) -> bool:
    """True when `str(path)` is already safe text (so it can be stored as the file's location)."""
    text = str(path)
    return display_name(text) == text


def decode_member_name(raw: bytes, *, utf8_flag: bool) -> str:
    """A zip entry's name: UTF-8 when flagged or when it decodes as UTF-8, else CP437 (as unzip does).

    Bytes that are flagged UTF-8 but are not become U+FFFD; the result is never an error.
    """
    if utf8_flag:
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp437")
