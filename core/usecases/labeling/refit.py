"""Refit off the request path. A decision is committed and the queue re-ranked with the current
model before the request returns; the (heavier) refit on all labels follows here, coalesced: many
quick decisions cause one refit on the newest labels, not one each."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from core.usecases.labeling.queue import ProjectState

log = logging.getLogger(__name__)
MIN_INTERVAL_S = 1.0


class Refitter:
    """One worker thread per Service (never module-level)."""

    def __init__(self) -> None:
        self._pending: dict[int, ProjectState] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.busy = 0

    def schedule(self, state: ProjectState) -> None:
        with self._wake:
            self._pending[state.project_id] = state
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="clipmark-refit", daemon=True)
                self._thread.start()
            self._wake.notify()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """For tests and shutdown: wait until nothing is pending or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._wake:
                if not self._pending and not self.busy:
                    return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                _, state = self._pending.popitem()
                self.busy += 1
            rest = MIN_INTERVAL_S - (time.perf_counter() - state.refitted_at)
            if rest > 0:  # many annotators: refit at most about once a second, on the newest labels
                time.sleep(rest)
            try:
                _refit(state, self.schedule)
            except Exception:  # a failed refit keeps the previous model; the next decision retries
                log.exception("background refit of project %s failed", state.project_id)
            finally:
                with self._wake:
                    self.busy -= 1


def _refit(state: ProjectState, again: Callable[[ProjectState], None]) -> None:
    start = time.perf_counter()
    with state.lock:
        labels, version = state.training_labels(), state.labels_version
    classifier, probs, context = state.fit(labels)
    with state.lock:
        current = state.install(classifier, probs, labels_version=version, context=context)
        state.update_seconds = time.perf_counter() - start
        state.refitted_at = time.perf_counter()
    if not current:
        again(state)
