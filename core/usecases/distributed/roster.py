"""A job's actors are stopped when the job ends, however it ends.

Ray Data releases an actor pool by dropping its handles and letting reference counting stop the actors.
After a job that failed (an actor raised) or was stopped (Ctrl-C, Cancel, an error while storing) a
handle can outlive the job, and its actor keeps its CPU or GPU: measured on a local Ray of 2 CPUs, an
actor of a failed embedding job stayed alive with its CPU after `gc.collect()`, so the next job of the
same long-running process (the web app) waited for a CPU that never came back.

So each actor enrols its own handle with a per-job roster (a zero-CPU actor) before it loads its model,
and the driver kills every enrolled actor, then the roster, when the job's loop exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ROSTER_TIMEOUT_S = 30.0  # asking the roster for its members; a roster that cannot answer is killed anyway


class Roster:
    """The handles of the actors of one job (runs as a Ray actor with num_cpus=0)."""

    def __init__(self) -> None:
        self.handles: list[Any] = []

    def join(self, handle: Any) -> int:
        self.handles.append(handle)
        return len(self.handles)

    def members(self) -> list[Any]:
        return list(self.handles)


def enrolled(actor: type) -> type:
    """`actor` whose constructor first enrols the new actor with the roster passed as `roster=`."""

    class Enrolled(actor):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, roster: Any, **kwargs: Any) -> None:
            import ray

            ray.get(roster.join.remote(ray.get_runtime_context().current_actor))
            super().__init__(*args, **kwargs)

    Enrolled.__name__ = Enrolled.__qualname__ = actor.__name__
    return Enrolled


@contextmanager
def job_actors(ray: Any) -> Iterator[Any]:
    """A roster for one job: pass it to `enrolled(actor)`'s constructor as `roster=`. On exit every
    actor that enrolled is killed (their results have all been consumed or abandoned by then)."""
    roster = ray.remote(num_cpus=0)(Roster).remote()
    try:
        yield roster
    finally:
        _release(ray, roster)


def _release(ray: Any, roster: Any) -> None:
    """Kill the enrolled actors, then the roster. Best effort, so that it never hides the error that
    ended the job: a cluster that cannot be reached has taken its actors with it."""
    gone = (ray.exceptions.RayError, ConnectionError, ValueError)
    try:
        handles = ray.get(roster.members.remote(), timeout=ROSTER_TIMEOUT_S)
    except gone:
        handles = []
    for handle in [*handles, roster]:
        try:
            ray.kill(handle, no_restart=True)
        except gone:
            continue
