"""The team part of the API: who is logged in, users, overlap, agreement, the review queue, the
history, and giving items back. Module-level functions of plain values, `service` first, each
passing the logged-in user to the service, which checks the role (an annotator calling these
endpoints directly gets the same PermissionDenied as in the page)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.errors import InvalidInput, PermissionDenied
from core.service import Service
from webapp.handlers import user_of

HISTORY_ACTIONS = ("accept", "correct", "skip", "undo", "review", "import", "region-add", "region-delete",
                   "region-relabel", "region-accept", "region-reject", "region-undo")


def whoami(service: Service, request: gr.Request | None = None) -> dict[str, Any]:
    """The acting user, whether logins are on, and whether they may manage users (the Users tab)."""
    user = user_of(service, request)
    try:
        service.team.list_users(annotator=user)
        admin = True
    except PermissionDenied:
        admin = False
    return {"user": user, "team": service.team.team_mode(), "admin": admin}


def add_user(service: Service, name: str, role: str, password: str,
             request: gr.Request | None = None) -> dict[str, Any]:
    """Add a user (admin only); role: annotator, reviewer or admin; password at least 8 characters."""
    return service.team.add_user(name, role=role, password=password, annotator=user_of(service, request))


def list_users(service: Service, request: gr.Request | None = None) -> list[dict[str, Any]]:
    """Every user with role and state (admin only)."""
    return service.team.list_users(annotator=user_of(service, request))


def disable_user(service: Service, name: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Disable a user (admin only); their items go back to the pool."""
    return service.team.disable_user(name, annotator=user_of(service, request))


def set_overlap(service: Service, project: str, share: float, annotators: int = 2,
                request: gr.Request | None = None) -> dict[str, Any]:
    """Send `share` (0..1) of the items to `annotators` people each, blind to each other (admin only)."""
    return service.team.set_overlap(project, share=float(share), annotators=int(annotators),
                               annotator=user_of(service, request))


def agreement(service: Service, project: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Cohen's kappa and confusion per pair, Fleiss' kappa, per-annotator agreement with the final label."""
    return service.team.agreement(project, annotator=user_of(service, request))


def review_queue(service: Service, project: str, limit: int = 100,
                 request: gr.Request | None = None) -> dict[str, Any]:
    """Overlap conflicts (who said what), label-error suspects and near-duplicates labeled differently."""
    return service.team.review_queue(project, annotator=user_of(service, request), limit=int(limit))


def resolve(service: Service, project: str, image_id: int, label: str,
            request: gr.Request | None = None) -> dict[str, Any]:
    """A reviewer's final label for an item (reviewer or admin)."""
    return service.team.resolve(project, image_id=int(image_id), label=label, annotator=user_of(service, request))


def history(service: Service, project: str, user: str = "", action: str = "", image_id: int | None = None,
            limit: int = 200, request: gr.Request | None = None) -> list[dict[str, Any]]:
    """Events newest first, filtered by user, action and image (empty: any)."""
    if action and action not in HISTORY_ACTIONS:
        raise InvalidInput(f"action: unknown '{action}' (valid: {', '.join(HISTORY_ACTIONS)}, or empty for all)")
    return service.team.history(project, user=user or None, action=action or None,
                           image_id=int(image_id) if image_id not in (None, "") else None,
                           limit=int(limit), annotator=user_of(service, request))


def release_leases(service: Service, project: str = "", request: gr.Request | None = None) -> dict[str, Any]:
    """Give back every item the logged-in user holds (of one project when given)."""
    return {"released": service.team.release_leases(user_of(service, request), project or None)}


def renew_leases(service: Service, request: gr.Request | None = None) -> dict[str, Any]:
    """Keep the logged-in user's items theirs a while longer (the Label view's heartbeat)."""
    return {"renewed": service.team.renew_leases(user_of(service, request))}
