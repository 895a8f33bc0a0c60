"""Image embeddings of a segmenter, computed once per (model, image) and kept on disk.

Layout: root/<model dir>/<sha[:2]>/<sha256>.npz with features (float16), original_size, input_size;
written to a temporary file in the same folder, then os.replace'd (a reader never sees half a file).
`get_or_compute` is single-flight: callers racing on one key wait for one encoder run.
`Precomputer` fills the cache in a background thread (e.g. the next images of the queue).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.errors import InvalidInput
from core.models.sam import ImageEmbedding, Segmenter

log = logging.getLogger(__name__)

Loader = Callable[[], np.ndarray]
MAX_PENDING = 64
MAX_ERRORS = 100
_SHA256 = re.compile(r"[0-9a-f]{64}")


def model_dir_name(model_id: str) -> str:
    """A folder name for `model_id`: its safe characters plus a short hash (no two ids share one)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._")[:80]
    return f"{safe}-{hashlib.sha256(model_id.encode('utf-8')).hexdigest()[:8]}"


def _check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise InvalidInput(f"sha256: must be 64 lowercase hex characters, got {sha256!r}")
    return sha256


def _read(path: Path) -> ImageEmbedding:
    with np.load(path, allow_pickle=False) as data:
        features, original, resized = data["features"], data["original_size"], data["input_size"]
    if features.ndim != 4 or original.shape != (2,) or resized.shape != (2,):
        raise ValueError(f"unexpected shapes in {path}")
    return ImageEmbedding(
        features=features.astype(np.float16, copy=False),
        original_size=(int(original[0]), int(original[1])),
        input_size=(int(resized[0]), int(resized[1])),
    )


class EmbeddingCache:
    """Embeddings on disk under `root`, the last `memory_items` also in memory. Thread-safe."""

    def __init__(self, root: str | Path, *, memory_items: int = 4) -> None:
        if not isinstance(memory_items, int) or memory_items < 0:
            raise InvalidInput(f"memory_items: must be an integer >= 0, got {memory_items!r}")
        self.root = Path(root)
        self.memory_items = memory_items
        self._memory: OrderedDict[tuple[str, str], ImageEmbedding] = OrderedDict()
        self._pending: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()

    def path(self, model_id: str, sha256: str) -> Path:
        sha = _check_sha(sha256)
        return self.root / model_dir_name(model_id) / sha[:2] / f"{sha}.npz"

    def contains(self, model_id: str, sha256: str) -> bool:
        with self._lock:
            if (model_id, sha256) in self._memory:
                return True
        return self.path(model_id, sha256).is_file()

    def get(self, model_id: str, sha256: str) -> ImageEmbedding | None:
        """From memory, else from disk; a file that cannot be read is deleted and counts as missing."""
        key, path = (model_id, sha256), self.path(model_id, sha256)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        try:
            embedding = _read(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("embedding cache: dropping unreadable %s: %s", path, exc)
            path.unlink(missing_ok=True)
            return None
        self._remember(key, embedding)
        return embedding

    def put(self, model_id: str, sha256: str, embedding: ImageEmbedding) -> None:
        path = self.path(model_id, sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{sha256[:8]}.", suffix=".tmp", delete=False) as f:
            temporary = f.name
            np.savez(
                f,
                features=np.asarray(embedding.features, dtype=np.float16),
                original_size=np.asarray(embedding.original_size, dtype=np.int64),
                input_size=np.asarray(embedding.input_size, dtype=np.int64),
            )
        try:
            os.replace(temporary, path)
        except OSError:
            os.unlink(temporary)
            raise
        self._remember((model_id, sha256), embedding)

    def get_or_compute(self, segmenter: Segmenter, sha256: str, load: Loader) -> ImageEmbedding:
        """The cached embedding, or `segmenter.embed(load())` once for all concurrent callers of a key."""
        key = (segmenter.model_id, sha256)
        while True:
            found = self.get(*key)
            if found is not None:
                return found
            with self._lock:
                event = self._pending.get(key)
                if event is None:
                    event = self._pending[key] = threading.Event()
                    break
            event.wait()  # the owner finished (or failed: then the loop tries again)
        try:
            found = self.get(*key)  # it may have landed between our miss and taking ownership
            if found is None:
                found = segmenter.embed(load())
                self.put(*key, found)
            return found
        finally:
            with self._lock:
                del self._pending[key]
            event.set()

    def _remember(self, key: tuple[str, str], embedding: ImageEmbedding) -> None:
        if self.memory_items == 0:
            return
        with self._lock:
            self._memory[key] = embedding
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)


class Precomputer:
    """Background daemon thread(s) filling an EmbeddingCache; started on the first `submit`."""

    def __init__(self, cache: EmbeddingCache, *, workers: int = 1) -> None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise InvalidInput(f"workers: must be an integer >= 1, got {workers!r}")
        self.cache = cache
        self.workers = workers
        self._queue: deque[tuple[Segmenter, str, Loader]] = deque()
        self._keys: set[tuple[str, str]] = set()  # queued or running
        self._running = 0
        self._errors: deque[tuple[str, str]] = deque(maxlen=MAX_ERRORS)
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._changed = threading.Condition()

    @property
    def errors(self) -> list[tuple[str, str]]:
        """(sha256, message) of the latest failed items, oldest first."""
        with self._changed:
            return list(self._errors)

    def submit(self, segmenter: Segmenter, items: list[tuple[str, Loader]]) -> int:
        """Queue (sha256, loader) items not cached or queued yet; returns how many were queued."""
        fresh = [(sha, load) for sha, load in items if not self.cache.contains(segmenter.model_id, _check_sha(sha))]
        queued = 0
        with self._changed:
            if self._stopping:
                raise InvalidInput("precomputer: stopped; create a new one")
            for sha, load in fresh:
                key = (segmenter.model_id, sha)
                if key not in self._keys:
                    self._keys.add(key)
                    self._queue.append((segmenter, sha, load))
                    queued += 1
            while len(self._queue) > MAX_PENDING:  # the oldest pending work is the least wanted now
                dropped, sha, _ = self._queue.popleft()
                self._keys.discard((dropped.model_id, sha))
            self._start_workers()
            self._changed.notify_all()
        return queued

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once nothing is queued or running; False if `timeout` seconds passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue and not self._running, timeout)

    def stop(self, timeout: float | None = 5.0) -> None:
        """Drop pending work, let running items finish, and end the threads."""
        with self._changed:
            self._stopping = True
            self._queue.clear()
            self._keys.clear()
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def _start_workers(self) -> None:
        while len(self._threads) < self.workers:
            thread = threading.Thread(target=self._work, name=f"sam-precompute-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _next(self) -> tuple[Segmenter, str, Loader] | None:
        with self._changed:
            self._changed.wait_for(lambda: self._queue or self._stopping)
            if self._stopping:
                return None
            self._running += 1
            return self._queue.popleft()

    def _work(self) -> None:
        while (item := self._next()) is not None:
            segmenter, sha, load = item
            try:
                self.cache.get_or_compute(segmenter, sha, load)
            except Exception as exc:  # a bad image or loader must not end the worker
                log.warning("precompute of %s failed: %s", sha, exc)
                with self._changed:
                    self._errors.append((sha, f"{type(exc).__name__}: {exc}"))
            finally:
                with self._changed:
                    self._running -= 1
                    self._keys.discard((segmenter.model_id, sha))
                    self._changed.notify_all()
