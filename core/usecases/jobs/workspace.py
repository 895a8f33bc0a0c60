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
from core.errors import InvalidInput
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
        return cls(media_dir=media, jobs=JobRunner(),
                   thumbs=ThumbnailCache(media / "thumbs", max_pixels=settings.max_pixels))

    def stage_uploads(self, paths: Sequence[str | Path]) -> list[Path]:
        """Copy uploaded files (browser uploads land in a temporary folder) into the media folder,
        one new folder per upload, keeping their names. Zip files stay zips: the import opens them."""
        if not paths:
            raise InvalidInput("files: upload at least one image or zip file")
        folder = self.media_dir / "uploads" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        folder.mkdir(parents=True, exist_ok=True)
        staged = []
        for number, path in enumerate(paths):
            source = Path(path)
            if not source.is_file():
                raise InvalidInput(f"files: upload '{source.name}' is not a file")
            name = source.name or f"upload-{number}"
            target = folder / name if not (folder / name).exists() else folder / f"{number}-{name}"
            shutil.copyfile(source, target)
            staged.append(target)
        return staged
