"""One module per tab. Each has module-level handlers of plain values (`service` first, so tests
call them directly) and a `build(ctx)` that lays out the tab and wires those handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from core.errors import ImageError, InvalidInput
from core.service import Service
from core.usecases.browse.results import ImageRef
from webapp.render import file_url
from webapp.wiring import SessionOrder, bind, ordered

Refresh = tuple[Callable[..., Any], list[Any], list[Any], dict[str, Any]]
HIDDEN: dict[str, Any] = {"api_visibility": "undocumented", "show_progress": "hidden"}


@dataclass
class Ctx:
    """What every view shares: the service and the project picker, plus the refreshes views ask
    for when another project is opened or the classes change. Those are chained explicitly after
    the events that cause them (`wire`), not hung on the dropdown's change event, which a value
    set by the server does not fire reliably."""

    service: Service
    project: gr.Dropdown
    on_classes: list[Refresh] = field(default_factory=list)
    on_project: list[Refresh] = field(default_factory=list)
    class_edits: list[Any] = field(default_factory=list)
    project_opens: list[Any] = field(default_factory=list)
    order: SessionOrder = field(default_factory=SessionOrder)

    def fn(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        return bind(handler, self.service)

    def ordered(self, handler: Callable[..., Any], outputs: int) -> Callable[..., Any]:
        """`handler` bound, in page order within each browser session (webapp.wiring.ordered)."""
        return ordered(self.fn(handler), self.order, outputs=outputs)

    def refresh_on_classes(self, handler: Callable[..., Any], inputs: list[Any], outputs: list[Any],
                           **options: Any) -> None:
        """Run when the classes change, and when another project is opened."""
        self.on_classes.append((self.fn(handler), inputs, outputs, options))

    def refresh_on_project(self, handler: Callable[..., Any], inputs: list[Any], outputs: list[Any],
                           **options: Any) -> None:
        self.on_project.append((self.fn(handler), inputs, outputs, options))

    def wire(self) -> None:
        """Chain every refresh after the events that need it (and the person picking a project)."""
        everything = self.on_classes + self.on_project
        for dependency in self.project_opens:
            for fn, inputs, outputs, options in everything:
                dependency.success(fn, inputs, outputs, **{**HIDDEN, **options})
        for dependency in self.class_edits:
            for fn, inputs, outputs, options in self.on_classes:
                dependency.success(fn, inputs, outputs, **{**HIDDEN, **options})
        for fn, inputs, outputs, options in everything:
            self.project.input(fn, inputs, outputs, **{**HIDDEN, **options})


def need_project(project: str | None) -> str:
    if not project:
        raise InvalidInput("project: choose a project at the top of the page first")
    return project


def marked_ids(text: str | None) -> list[int]:
    """'12,15,40' (ids of marked tiles, sent by the page) -> [12, 15, 40]."""
    return [int(part) for part in (text or "").split(",") if part.strip().isdigit()]


TILE_SIZE = 256


def tile_url(service: Service, item: ImageRef) -> str | None:
    """URL of a grid tile's thumbnail (made now if missing); None when the image is unusable."""
    try:
        return file_url(service.browse.thumbnail(item, size=TILE_SIZE))
    except ImageError:
        return None
