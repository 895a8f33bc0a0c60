"""One frozen Settings object, built from the environment (and CLI flags layered on top). No globals."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.models.base import parse_pretrained

DEFAULT_DB = "clipmark.sqlite"
DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB
    model: str = DEFAULT_MODEL
    pretrained: str | None = DEFAULT_PRETRAINED
    model_config: str | None = None
    device: str | None = None
    media_dir: Path | None = None
    batch_size: int = 32
    num_workers: int | None = None
    max_pixels: int = 100_000_000
    user: str = "local"
    sam_model: str = "vit_b"                 # core.models.sam.SEGMENTERS: vit_b, vit_l, vit_h, vit_t, tiny
    sam_checkpoint: str | None = None        # local .pth; None: the official download (vit_b/l/h)
    import_roots: tuple[Path, ...] = ()      # folders web callers may import from (none: uploads only)
    max_archive_entries: int = 100_000       # per zip archive; more is one error for the archive
    max_archive_bytes: int = 64 * 2**30      # declared uncompressed bytes per zip archive
    job_workers: int = 2                     # background jobs at once (one at a time per project)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            db=env.get("CLIPMARK_DB", DEFAULT_DB),
            model=env.get("CLIPMARK_MODEL", DEFAULT_MODEL),
            pretrained=parse_pretrained(env.get("CLIPMARK_PRETRAINED", DEFAULT_PRETRAINED)),
            model_config=env.get("CLIPMARK_MODEL_CONFIG") or None,
            device=env.get("CLIPMARK_DEVICE") or None,
            media_dir=Path(env["CLIPMARK_MEDIA"]) if env.get("CLIPMARK_MEDIA") else None,
            user=env.get("CLIPMARK_USER") or env.get("USER") or "local",
            sam_model=env.get("CLIPMARK_SAM_MODEL") or "vit_b",
            sam_checkpoint=env.get("CLIPMARK_SAM_CHECKPOINT") or None,
            import_roots=import_roots(env.get("CLIPMARK_IMPORT_ROOTS", "")),
        )

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with every change that is not None applied (CLI flags left unset keep env values)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def resolved_import_roots(self) -> tuple[Path, ...]:
        """The import roots as real folders (symbolic links resolved), so paths compare by what they are."""
        return tuple(Path(root).expanduser().resolve() for root in self.import_roots)

    def resolved_media_dir(self) -> Path:
        """Where imported bytes without a stable path (zip entries, uploads) are kept."""
        if self.media_dir is not None:
            return self.media_dir
        if "://" not in self.db:
            return Path(self.db).expanduser().resolve().parent / (Path(self.db).name + ".media")
        return Path.home() / ".clipmark" / "media"


def import_roots(text: str) -> tuple[Path, ...]:
    """`CLIPMARK_IMPORT_ROOTS`: folders separated by os.pathsep (':' on POSIX); blanks ignored."""
    return tuple(Path(part) for part in text.split(os.pathsep) if part.strip())
