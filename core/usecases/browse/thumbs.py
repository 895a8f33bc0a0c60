"""Display-size JPEG copies of images, cached on disk by content hash and size.

The web app shows these instead of the originals (a 20-megapixel photo would take seconds to reach
the browser). `prefetch` makes them on a background thread ahead of need, so the next item of the
labeling queue is ready before it is asked for."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.errors import ImageError, InvalidInput
from core.io.images import thumbnail_bytes

SIZES = (256, 1024)  # grid tiles, the large image of the Label view


class ThumbnailCache:
    def __init__(self, root: Path, *, max_pixels: int) -> None:
        self.root = Path(root)
        self.max_pixels = max_pixels
        self._failed: dict[tuple[str, int], str] = {}
        self._pending: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def target(self, *, sha256: str | None, file_path: str, size: int) -> Path:
        """Where the thumbnail of this image at this size lives (whether made yet or not)."""
        if size not in SIZES:
            raise InvalidInput(f"size: {size} is not a thumbnail size (valid: {', '.join(map(str, SIZES))})")
        key = sha256 or hashlib.sha256(file_path.encode("utf-8")).hexdigest()
        return self.root / str(size) / key[:2] / f"{key}.jpg"

    def path(self, *, sha256: str | None, file_path: str, size: int) -> Path:
        """The thumbnail file, made now if missing. Raises ImageError when the image is unusable."""
        target = self.target(sha256=sha256, file_path=file_path, size=size)
        if target.is_file():
            return target
        key = (str(target), size)
        if key in self._failed:
            raise ImageError(file_path, self._failed[key])
        try:
            data = thumbnail_bytes(file_path, size=size, max_pixels=self.max_pixels)
        except ImageError as exc:
            self._failed[key] = exc.reason
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{threading.get_ident()}.part")
        part.write_bytes(data)
        part.replace(target)
        return target

    def prefetch(self, files: Iterable[tuple[str | None, str]], *, size: int) -> list[Path | None]:
        """Make the thumbnails of (sha256, file_path) pairs on the background thread. Returns, in
        order, the thumbnails already made (None for those still to come or unusable)."""
        ready: list[Path | None] = []
        for sha256, file_path in files:
            target = self.target(sha256=sha256, file_path=file_path, size=size)
            key = (str(target), size)
            ready.append(target if target.is_file() else None)
            with self._lock:
                if target.is_file() or key in self._pending or key in self._failed:
                    continue
                self._pending.add(key)
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clipmark-thumbs")
                self._executor.submit(self._make, sha256, file_path, size, key)
        return ready

    def _make(self, sha256: str | None, file_path: str, size: int, key: tuple[str, int]) -> None:
        try:
            self.path(sha256=sha256, file_path=file_path, size=size)
        except ImageError:
            pass  # remembered in _failed; the page shows the reason when it gets there
        finally:
            with self._lock:
                self._pending.discard(key)
