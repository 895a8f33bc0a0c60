"""What an interactive client (the web app) needs next to a Service: the background jobs, the
thumbnail cache and uploads staged into the media folder. One Workspace per Service; its threads
start on first use; nothing here is module-level state."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings
from core.errors import InvalidInput, PermissionDenied
from core.io.names import display_name
from core.usecases.browse.thumbs import ThumbnailCache
from core.usecases.jobs.runner import JobRunner


@dataclass
class Workspace:
    media_dir: Path
    jobs: JobRunner
    thumbs: ThumbnailCache

    @classmethod
    def create(cls, settings: Settings) -> Workspace:
        media = settings.resolved_media_dir()
        return cls(media_dir=media, jobs=JobRunner(workers=settings.job_workers),
                   thumbs=ThumbnailCache(media / "thumbs", max_pixels=settings.max_pixels))

    def stage_uploads(self, paths: Sequence[str | Path], *, uploaded_to: Path, maximum: int) -> list[Path]:
        """Copy uploaded files into the media folder, one new folder per upload, keeping their names.
        Only files inside `uploaded_to` (the web server's upload folder) are uploads: any other path,
        e.g. a FileData naming /etc/passwd, is refused before anything is read. Zip files stay zips."""
        if not paths:
            raise InvalidInput("files: upload at least one image or zip file")
        if len(paths) > maximum:
            raise InvalidInput(f"files: {len(paths):,} files in one upload; at most {maximum:,} (zip them)")
        sources = [_uploaded(path, uploaded_to=uploaded_to, position=k) for k, path in enumerate(paths)]
        folder = self.media_dir / "uploads" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        folder.mkdir(parents=True, exist_ok=True)
        staged = []
        for number, source in enumerate(sources):
            name = source.name or f"upload-{number}"
            target = folder / name if not (folder / name).exists() else folder / f"{number}-{name}"
            shutil.copyfile(source, target)
            staged.append(target)
        return staged


def _uploaded(path: str | Path, *, uploaded_to: Path, position: int) -> Path:
    """The upload's real file, if it is a regular file inside the upload folder (links resolved)."""
    refusal = PermissionDenied(f"files[{position}]: not a file uploaded to this server; upload the file "
                               "itself (a path on the server is not an upload)")
    try:
        real = Path(path).resolve(strict=True)
        folder = uploaded_to.resolve(strict=True)
    except (OSError, RuntimeError, ValueError, TypeError):
        raise refusal from None
    if not real.is_relative_to(folder) or real == folder:
        raise refusal
    if not real.is_file():
        raise InvalidInput(f"files[{position}]: upload {display_name(real.name)!r} is not a file")
    return real
