"""Which user each web session (Gradio's session hash) belongs to, so that events arriving without a
login cookie (the page's unload after a client disconnects) still know whose items to give back.
One per Service; thread-safe; remembers the `keep` most recently active sessions."""

from __future__ import annotations

import threading
from collections import OrderedDict


class WebSessions:
    def __init__(self, *, keep: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._users: OrderedDict[str, str] = OrderedDict()
        self._keep = keep

    def remember(self, session: str | None, name: str) -> None:
        if not session:
            return
        with self._lock:
            self._users.pop(session, None)
            self._users[session] = name
            while len(self._users) > self._keep:
                self._users.popitem(last=False)

    def user_of(self, session: str | None) -> str | None:
        with self._lock:
            return self._users.get(session) if session else None

    def forget(self, session: str | None) -> str | None:
        """The session's user (None when unknown), forgotten."""
        with self._lock:
            return self._users.pop(session, None) if session else None
