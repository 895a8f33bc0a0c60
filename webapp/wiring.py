"""Glue between module-level handlers and Gradio: bind the service, map our errors to gr.Error,
and name the acting user (the seam where team logins plug in)."""

from __future__ import annotations

import functools
import html
import inspect
import typing
from collections.abc import Callable
from typing import Any

import gradio as gr

from core.errors import ClipmarkError, Conflict, ImageError, ModelLoadError, NotFound, PermissionDenied

ERROR_TITLES: dict[type[ClipmarkError], str] = {
    NotFound: "Not found", Conflict: "Conflict", PermissionDenied: "Not allowed",
    ModelLoadError: "Model not loaded", ImageError: "Unusable image",
}


def acting_user(request: gr.Request | None, *, default: str) -> str:
    """Who is acting. Single-user for now: the configured user; when the app is launched with auth,
    the logged-in name (Gradio sets request.username)."""
    name = getattr(request, "username", None) if request is not None else None
    return name or default


def to_gr_error(exc: ClipmarkError) -> gr.Error:
    """gr.Error renders its message as HTML: user text in it (class names, paths) is escaped."""
    title = next((t for kind, t in ERROR_TITLES.items() if isinstance(exc, kind)), "Cannot do that")
    return gr.Error(html.escape(str(exc), quote=False), title=title, print_exception=False)


def bind(fn: Callable[..., Any], service: Any, *, result: Callable[[Any], Any] | None = None) -> Callable[..., Any]:
    """`fn(service, *rest)` as a function of `rest` that Gradio can inspect (resolved type hints,
    gr.Request injection) and that turns ClipmarkError into gr.Error. `result` post-processes."""
    hints = typing.get_type_hints(fn)
    signature = inspect.signature(fn)
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in list(signature.parameters.values())[1:]]

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            value = fn(service, *args, **kwargs)
            return value if result is None else result(value)
        except ClipmarkError as exc:
            raise to_gr_error(exc) from exc

    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params, return_annotation=hints.get("return", signature.return_annotation))
    call.__annotations__ = {k: v for k, v in hints.items() if k != "service"}
    del call.__wrapped__  # type: ignore[attr-defined]  # Gradio must see this signature, not fn's
    return call
