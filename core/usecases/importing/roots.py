"""The folders a web caller may import from. The trusted local operator (the CLI) is not limited;
a person acting through the web app names only paths inside one of the configured roots.

A path is resolved (symbolic links included) before it is compared, so a link inside a root that
points elsewhere is refused. A path that does not exist is refused with the same message as one
outside every root: the answer never says which files exist on the server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import PermissionDenied

NO_ROOTS = ("the server has no import roots, so only uploads can be imported; an admin starts it with "
            "--import-root DIR (or CLIPMARK_IMPORT_ROOTS) to allow server folders")


@dataclass(frozen=True)
class ImportRoots:
    """`roots` already resolved (Settings.resolved_import_roots); `None`: not limited (the CLI)."""

    roots: tuple[Path, ...] | None

    def check(self, path: str | Path, *, field: str) -> Path:
        """The resolved path, when it lies inside a root; else PermissionDenied naming `field`."""
        if self.roots is None:
            return Path(path)
        if not self.roots:
            raise PermissionDenied(f"{field}: {NO_ROOTS}")
        resolved = _resolved(path)
        if resolved is None or not any(resolved.is_relative_to(root) for root in self.roots):
            raise PermissionDenied(f"{field}: not a readable path inside the server's import roots "
                                   f"({', '.join(str(root) for root in self.roots)})")
        return resolved

    def allows(self, path: Path) -> bool:
        """Whether a file met while walking a folder may be read (a link out of the roots may not)."""
        if self.roots is None:
            return True
        resolved = _resolved(path)
        return resolved is not None and any(resolved.is_relative_to(root) for root in self.roots)


def _resolved(path: str | Path) -> Path | None:
    try:
        return Path(path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, unreadable, a link loop, a NUL byte
        return None
