"""One frozen Settings object, built from the environment (and CLI flags layered on top). No globals."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

DEFAULT_DB = "clipmark.sqlite"
DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
NO_WEIGHTS = ("", "none", "random")


def parse_pretrained(value: str | None) -> str | None:
    """The weights named on the command line, in the environment or in the web form: a hub tag or a
    checkpoint path; None (random weights) for an empty value, 'none' or 'random'."""
    if value is None or value.strip().lower() in NO_WEIGHTS:
        return None
    return value.strip()


@dataclass(frozen=True)
class LoginPolicy:
    """Login throttling, per user name and per client address: `free_failures` wrong passwords
    answer at once; after that each attempt waits `delay_s`, doubling per failure up to `max_delay_s`
    (an earlier attempt is refused and counts as a failure); `lockout_after` failures lock the name
    (or address) for `lockout_s` seconds."""

    free_failures: int = 5
    delay_s: float = 1.0
    max_delay_s: float = 60.0
    lockout_after: int = 20
    lockout_s: float = 900.0

    @classmethod
    def from_env(cls, env: dict[str, str]) -> LoginPolicy:
        """CLIPMARK_LOGIN_FREE_FAILURES, _DELAY_S, _MAX_DELAY_S, _LOCKOUT_AFTER, _LOCKOUT_MINUTES."""
        got = {name: env.get(f"CLIPMARK_LOGIN_{name.upper()}") for name in ("free_failures", "lockout_after")}
        delays = {name: env.get(f"CLIPMARK_LOGIN_{name.upper()}") for name in ("delay_s", "max_delay_s")}
        minutes = env.get("CLIPMARK_LOGIN_LOCKOUT_MINUTES")
        return cls().with_overrides(**{k: int(v) for k, v in got.items() if v},
                                    **{k: float(v) for k, v in delays.items() if v},
                                    lockout_s=float(minutes) * 60 if minutes else None)

    def with_overrides(self, **changes: object) -> LoginPolicy:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB
    model: str = DEFAULT_MODEL
    pretrained: str | None = DEFAULT_PRETRAINED
    model_config: str | None = None
    device: str | None = None
    media_dir: Path | None = None
    vector_dir: Path | None = None           # memory-mapped embeddings (core.store.vectors): resolved_vector_dir
    batch_size: int = 32
    num_workers: int | None = None
    max_pixels: int = 100_000_000
    user: str = "local"
    sam_model: str = "vit_b"                 # core.models.sam.SEGMENTERS: vit_b, vit_l, vit_h, vit_t, tiny
    sam_checkpoint: str | None = None        # local .pth; None: the official download (vit_b/l/h)
    login: LoginPolicy = LoginPolicy()       # login throttling and lockout
    import_roots: tuple[Path, ...] = ()      # folders web callers may import from (none: uploads only)
    max_archive_entries: int = 100_000       # per zip archive; more is one error for the archive
    max_archive_bytes: int = 64 * 2**30      # declared uncompressed bytes per zip archive
    job_workers: int = 2                     # background jobs at once (one at a time per project)
    engine: str = "local"                    # embed / sam-embed: "local" (this process) or "ray"
    engine_address: str | None = None        # a Ray cluster ('ray://head:10001', 'auto'): set, jobs run there
    engine_actors: int = 2                   # model actors of a Ray job (one GPU each where there are GPUs)
    engine_path_map: tuple[tuple[str, str], ...] = ()  # (store prefix, prefix the cluster reads), e.g. s3://

    @property
    def default_engine(self) -> str:
        """The engine a job uses when none is named: Ray once an engine address is configured."""
        return "ray" if self.engine_address else self.engine

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
            vector_dir=Path(env["CLIPMARK_VECTORS"]) if env.get("CLIPMARK_VECTORS") else None,
            user=env.get("CLIPMARK_USER") or env.get("USER") or "local",
            sam_model=env.get("CLIPMARK_SAM_MODEL") or "vit_b",
            sam_checkpoint=env.get("CLIPMARK_SAM_CHECKPOINT") or None,
            login=LoginPolicy.from_env(env),
            import_roots=import_roots(env.get("CLIPMARK_IMPORT_ROOTS", "")),
            engine=env.get("CLIPMARK_ENGINE") or "local",
            engine_address=env.get("CLIPMARK_RAY_ADDRESS") or None,
            engine_actors=whole_number(env.get("CLIPMARK_RAY_ACTORS") or "2", field="CLIPMARK_RAY_ACTORS"),
            engine_path_map=path_map(env.get("CLIPMARK_RAY_PATH_MAP", "")),
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

    def resolved_vector_dir(self) -> Path | None:
        """Where the memory-mapped embedding files of a server database live: `vector_dir`, else one
        folder per database in a `vectors` folder beside the media folder (~/.clipmark/vectors by
        default: a local cache of each app server; the store stays the source of truth). None for
        SQLite, whose files go beside the database file unless `vector_dir` says otherwise
        (core.store.vectors.folder_of derives that folder from the file the engine opened)."""
        if self.vector_dir is not None:
            return self.vector_dir
        if "://" not in self.db or self.db.startswith("sqlite"):
            return None
        identity = make_url(self.db).render_as_string(hide_password=True)
        return self.resolved_media_dir().parent / "vectors" / hashlib.sha1(identity.encode()).hexdigest()[:16]


def import_roots(text: str) -> tuple[Path, ...]:
    """`CLIPMARK_IMPORT_ROOTS`: folders separated by os.pathsep (':' on POSIX); blanks ignored."""
    return tuple(Path(part) for part in text.split(os.pathsep) if part.strip())


def whole_number(text: str, *, field: str) -> int:
    """A positive whole number from the environment; ValueError naming the variable otherwise."""
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"{field}: must be a whole number >= 1, got {text!r}")
    return int(text)


def path_map(text: str) -> tuple[tuple[str, str], ...]:
    """`CLIPMARK_RAY_PATH_MAP`: 'STORE_PREFIX=CLUSTER_PREFIX' pairs separated by ';', e.g.
    '/data/images=s3://bucket/images' (the store's paths as the Ray actors read them)."""
    pairs = [part.split("=", 1) for part in text.split(";") if part.strip()]
    bad = ["=".join(pair) for pair in pairs if len(pair) != 2 or not pair[0].strip() or not pair[1].strip()]
    if bad:
        raise ValueError(f"CLIPMARK_RAY_PATH_MAP: {bad[0]!r} is not STORE_PREFIX=CLUSTER_PREFIX "
                         "(pairs separated by ';', e.g. /data/images=s3://bucket/images)")
    return tuple((local.strip(), remote.strip()) for local, remote in pairs)
