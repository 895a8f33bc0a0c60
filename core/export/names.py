"""Safe names for what an export writes: one path component each, never '..', no separators."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath, PureWindowsPath

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\<>:"|?*]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)
MAX_BYTES = 150


def safe_component(text: str, *, fallback: str = "_") -> str:
    """`text` as a single portable path component: unsafe characters become '_', no leading dot
    (so never '.' or '..'), not a Windows device name, at most MAX_BYTES of UTF-8."""
    name = _UNSAFE.sub("_", text).strip().rstrip(".")
    if name.startswith("."):
        name = "_" + name[1:]
    if _RESERVED.match(name):
        name = "_" + name
    encoded = name.encode("utf-8")[:MAX_BYTES]
    name = encoded.decode("utf-8", errors="ignore")
    return name or fallback


def class_folders(classes: Sequence[str]) -> dict[str, str]:
    """{class name: folder name}, unique even where two names sanitise alike (case-insensitively,
    for file systems that fold case)."""
    folders: dict[str, str] = {}
    taken: set[str] = set()
    for name in classes:
        base = safe_component(name)
        folder, n = base, 1
        while folder.lower() in taken:
            n += 1
            folder = f"{base}-{n}"
        taken.add(folder.lower())
        folders[name] = folder
    return folders


def image_file_name(path: str, *, image_id: int, fmt: str | None) -> str:
    """The file name an image gets in an export: its own basename (from a POSIX or Windows path,
    or a zip entry 'a.zip!dir/x.jpg'), made safe, with an extension."""
    tail = path.rsplit("!", 1)[-1]
    base = PureWindowsPath(PurePosixPath(tail).name).name
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, (fmt or "img").lower()
    stem = safe_component(stem, fallback=f"image-{image_id}")
    ext = safe_component(ext, fallback="img").replace(".", "_")
    return f"{stem}.{ext}"


def alternative_name(name: str, *, image_id: int, attempt: int) -> str:
    """A deterministic fallback when `name` is taken: 'x-<image_id>.jpg', then 'x-<image_id>-2.jpg'."""
    stem, _, ext = name.rpartition(".")
    suffix = f"-{image_id}" if attempt == 1 else f"-{image_id}-{attempt}"
    return f"{stem}{suffix}.{ext}"
