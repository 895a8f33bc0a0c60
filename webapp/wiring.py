"""Glue between module-level handlers and Gradio: bind the service, map our errors to gr.Error,
name the acting user (the logged-in name in team mode), and keep one browser session's Label
events in order without making other sessions wait."""

from __future__ import annotations

import functools
import html
import inspect
import threading
import typing
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from core.errors import ClipmarkError, Conflict, ImageError, ModelLoadError, NotFound, PermissionDenied

ERROR_TITLES: dict[type[ClipmarkError], str] = {
    NotFound: "Not found", Conflict: "Conflict", PermissionDenied: "Not allowed",
    ModelLoadError: "Model not loaded", ImageError: "Unusable image",
}


def acting_user(request: gr.Request | None, *, default: str) -> str:
    """Who is acting: the logged-in name when the app runs with logins (Gradio sets
    request.username), else the configured single user."""
    name = getattr(request, "username", None) if request is not None else None
    return name or default


def to_gr_error(exc: ClipmarkError) -> gr.Error:
    """gr.Error renders its message as HTML: user text in it (class names, paths) is escaped."""
    title = next((t for kind, t in ERROR_TITLES.items() if isinstance(exc, kind)), "Cannot do that")
    return gr.Error(html.escape(str(exc), quote=False), title=title, print_exception=False)


REQUEST_TYPES = (gr.Request, gr.Request | None, typing.Optional[gr.Request])  # noqa: UP045
EXTRA_REQUEST = "clipmark_request"
CHECKED = "clipmark_checked_user"


def signed_in(service: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Every call of a logged-in session checks, in the service, that the user is still enabled
    (a disabled user's session is signed out, PermissionDenied) and takes their current role, even
    where the handler itself does not need the user's name."""
    request = next((a for a in (*args, *kwargs.values()) if isinstance(a, gr.Request)), None)
    name = acting_user(request, default="")
    if name:
        service.team.signed_in(name, session=getattr(request, "session_hash", None))
        setattr(request, CHECKED, name)  # the handler's own user_of need not read the store again


def checked_user(request: gr.Request | None) -> str | None:
    """The user `signed_in` already checked for this request (None when not checked)."""
    return getattr(request, CHECKED, None) if request is not None else None


def bind(fn: Callable[..., Any], service: Any, *, result: Callable[[Any], Any] | None = None,
         check_user: bool = True) -> Callable[..., Any]:
    """`fn(service, *rest)` as a function of `rest` that Gradio can inspect (resolved type hints,
    gr.Request injection) and that turns ClipmarkError into gr.Error. `result` post-processes.
    `check_user`: refuse a signed-out (disabled, deleted) user before the handler runs."""
    hints = typing.get_type_hints(fn)
    signature = inspect.signature(fn)
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in list(signature.parameters.values())[1:]]
    extra = check_user and not any(p.annotation in REQUEST_TYPES for p in params)
    if extra:  # Gradio injects a request wherever the signature asks for one: ask, to check the user
        params.append(inspect.Parameter(EXTRA_REQUEST, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                        annotation=gr.Request | None))
    at = len(params) - 1

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        request = None
        if extra:  # Gradio passes it positionally, where the signature has it; callers may name it
            request = args[at] if len(args) > at else kwargs.pop(EXTRA_REQUEST, None)
            args = args[:at]
        try:
            if check_user:
                signed_in(service, (*args, request), kwargs)
            value = fn(service, *args, **kwargs)
            return value if result is None else result(value)
        except ClipmarkError as exc:
            raise to_gr_error(exc) from exc

    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params, return_annotation=hints.get("return", signature.return_annotation))
    call.__annotations__ = {k: v for k, v in hints.items() if k != "service"}
    if extra:
        call.__annotations__[EXTRA_REQUEST] = gr.Request | None
    del call.__wrapped__  # type: ignore[attr-defined]  # Gradio must see this signature, not fn's
    return call


@dataclass
class _Turns:
    lock: threading.Lock = field(default_factory=threading.Lock)
    shown: float = float("-inf")


class SessionOrder:
    """Per browser session: the Label view's events run one at a time, and an event whose view a
    later event (by the page's own counter) has already put on screen does not overwrite it. Other
    sessions are never held up, unlike one global concurrency group with limit 1. Remembers the
    `keep` most recently active sessions."""

    def __init__(self, *, keep: int = 10_000) -> None:
        self._guard = threading.Lock()
        self._sessions: OrderedDict[str, _Turns] = OrderedDict()
        self._keep = keep

    def _turns(self, session: str) -> _Turns:
        with self._guard:
            turns = self._sessions.pop(session, None) or _Turns()
            self._sessions[session] = turns
            while len(self._sessions) > self._keep:
                self._sessions.popitem(last=False)
            return turns

    def run(self, session: str | None, seq: float | None, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """(show it?, fn's value). Without a session or a sequence number, always shown."""
        if session is None:
            return True, fn()
        turns = self._turns(session)
        with turns.lock:
            value = fn()
            if seq is None:
                return True, value
            if seq < turns.shown:
                return False, value
            turns.shown = seq
            return True, value


SEQ_JS = "(seq, ...rest) => [(window.cmSeq = (window.cmSeq || 0) + 1), ...rest]"


def ordered(call: Callable[..., Any], order: SessionOrder, *, outputs: int) -> Callable[..., Any]:
    """A bound handler whose last parameter is `request`, taking first the page's sequence number
    (`SEQ_JS` fills it in): run in order within the session; a stale view becomes gr.skip()."""
    signature = inspect.signature(call)
    seq = inspect.Parameter("seq", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=float | None)

    @functools.wraps(call)
    def run(number: float | None, *args: Any) -> Any:
        request = args[-1] if args and isinstance(args[-1], gr.Request) else None
        session = getattr(request, "session_hash", None)
        show, value = order.run(session, number, lambda: call(*args))
        return value if show else tuple(gr.skip() for _ in range(outputs))

    run.__signature__ = signature.replace(parameters=[seq, *signature.parameters.values()])  # type: ignore[attr-defined]
    run.__annotations__ = {"seq": float | None, **call.__annotations__}
    del run.__wrapped__  # type: ignore[attr-defined]
    return run
