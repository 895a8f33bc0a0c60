"""Login throttling, kept in memory per Service (one server process): failures are counted per user
name and per client address; after the free ones each attempt must wait a doubling delay, and many
failures lock the name (or address) for a while. An attempt refused by the throttle counts as a
failure too, so hammering locks sooner rather than slipping through. Thread-safe."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.config import LoginPolicy
from core.validation import name_key

Key = tuple[str, str]   # ("user", folded name) or ("address", client address)


@dataclass
class _Record:
    failures: int = 0            # every counted attempt: what the lockout counts
    checked: int = 0             # the wrong passwords among them: what the delay doubles on
    last: float = 0.0            # clock time of the last counted failure
    locked_until: float = 0.0


@dataclass(frozen=True)
class Refusal:
    """Why an attempt is not checked: which key, for how long, and whether that is a lockout."""

    key: Key
    wait: float
    locked: bool

    def message(self) -> str:
        who = f"for '{self.key[1]}'" if self.key[0] == "user" else f"from {self.key[1]}"
        return f"too many failed logins {who}: try again in {duration(self.wait)}"


def duration(seconds: float) -> str:
    if seconds < 60:
        count, unit = max(1, math.ceil(seconds)), "second"
    else:
        count, unit = math.ceil(seconds / 60), "minute"
    return f"{count} {unit}{'s' if count != 1 else ''}"


def keys_of(name: str, address: str | None) -> list[Key]:
    keys: list[Key] = [("user", name_key(name))]
    return keys + [("address", address)] if address else keys


class LoginThrottle:
    def __init__(self, policy: LoginPolicy, *, clock: Callable[[], float] = time.monotonic,
                 keep: int = 100_000) -> None:
        self.policy = policy
        self._clock = clock
        self._keep = keep
        self._lock = threading.Lock()
        self._records: OrderedDict[Key, _Record] = OrderedDict()

    def admit(self, keys: Iterable[Key]) -> tuple[Refusal | None, list[Key]]:
        """Before checking a password: (a refusal or None to go ahead, the keys whose lockout began now).
        Per user name the attempt is counted as a failure at once (so parallel guesses at one name
        cannot all slip through the free ones); `succeeded` takes it back, `failed` confirms it. Per
        address only wrong passwords count (`failed`): a team behind one address (an office, a proxy)
        logging in at the same moment is not one client guessing. A refused attempt counts on every
        key (and may start a lockout)."""
        with self._lock:
            now = self._clock()
            records = [(key, self._record(key, now)) for key in keys]
            refusal = next((r for r in (self._refusal(key, rec, now) for key, rec in records) if r), None)
            locked = [key for key, record in records if (refusal is not None or key[0] == "user")
                      and self._count(record, now, checked=refusal is None)]
            return refusal, locked

    def failed(self, keys: Iterable[Key]) -> list[Key]:
        """The password was wrong (already counted by `admit`): the keys whose lockout begins now."""
        with self._lock:
            now = self._clock()
            for key in keys:
                if key[0] == "address":  # not counted by admit: count this wrong password now
                    self._count(self._record(key, now), now, checked=True)
            records = [(key, self._records.get(key)) for key in keys]
            return [key for key, record in records if record is not None and self._lock_if_due(record, now)]

    def succeeded(self, keys: Iterable[Key]) -> None:
        """The password was right: the name starts afresh (the address keeps its wrong passwords)."""
        with self._lock:
            for key in keys:
                if key[0] == "user":
                    self._records.pop(key, None)

    def failures(self, key: Key) -> int:
        with self._lock:
            record = self._records.get(key)
            return 0 if record is None else record.failures

    def _record(self, key: Key, now: float) -> _Record:
        record = self._records.pop(key, None) or _Record()
        expired = record.locked_until and now >= record.locked_until
        if expired or (not record.locked_until and now - record.last > self.policy.lockout_s):
            record = _Record()
        self._records[key] = record
        while len(self._records) > self._keep:
            self._records.popitem(last=False)
        return record

    def _refusal(self, key: Key, record: _Record, now: float) -> Refusal | None:
        if record.locked_until > now:
            return Refusal(key=key, wait=record.locked_until - now, locked=True)
        extra = record.checked - self.policy.free_failures
        if extra < 0:
            return None
        wait = min(self.policy.delay_s * 2.0 ** min(extra, 60), self.policy.max_delay_s) - (now - record.last)
        return Refusal(key=key, wait=wait, locked=False) if wait > 0 else None

    def _count(self, record: _Record, now: float, *, checked: bool) -> bool:
        """Count one attempt as a failure. A refused attempt moves neither the delay's start nor its
        length (so waiting as told works) but may start the lockout; a checked one does both."""
        if record.locked_until > now:
            return False
        record.failures += 1
        if checked:
            record.checked, record.last = record.checked + 1, now
            return False
        return self._lock_if_due(record, now)

    def _lock_if_due(self, record: _Record, now: float) -> bool:
        if record.locked_until > now or record.failures < self.policy.lockout_after:
            return False
        record.locked_until = now + self.policy.lockout_s
        return True
