"""The team part of the API: who is logged in, users, the sign-in log, overlap, agreement, the review
queue, the history, and giving items back. Module-level functions of plain values, `service` first,
each passing the logged-in user to the service, which checks that they are still enabled and their
role (an annotator calling these endpoints directly gets the same PermissionDenied as in the page).
Answers are JSON through webapp.payloads.to_json."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.service import Service
from core.usecases.team.results import HISTORY_ACTIONS
from webapp.handlers import user_of
from webapp.payloads import to_json

__all__ = ["HISTORY_ACTIONS"]


def whoami(service: Service, request: gr.Request | None = None) -> dict[str, Any]:
    """The acting user, their role, whether logins are on, and whether they may manage users."""
    return to_json(service.team.whoami(annotator=user_of(service, request)))


def add_user(service: Service, name: str, role: str, password: str,
             request: gr.Request | None = None) -> dict[str, Any]:
    """Add a user (admin only); role: annotator, reviewer or admin; password at least 8 characters."""
    return to_json(service.team.add_user(name, role=role, password=password, annotator=user_of(service, request)))


def list_users(service: Service, request: gr.Request | None = None) -> list[dict[str, Any]]:
    """Every user with role and state (admin only)."""
    return to_json(service.team.list_users(annotator=user_of(service, request)))


def disable_user(service: Service, name: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Disable a user (admin only): their sessions are signed out, their items go back to the pool."""
    return to_json(service.team.disable_user(name, annotator=user_of(service, request)))


def set_role(service: Service, name: str, role: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Give a user another role (admin only); it counts from their next call."""
    return to_json(service.team.set_role(name, role, annotator=user_of(service, request)))


def auth_events(service: Service, limit: int = 200, request: gr.Request | None = None) -> list[dict[str, Any]]:
    """The sign-in log, newest first (admin only): failed logins, lockouts, signed-out sessions, user changes."""
    return to_json(service.team.auth_events(limit=limit, annotator=user_of(service, request)))


def set_overlap(service: Service, project: str, share: float, annotators: int = 2,
                request: gr.Request | None = None) -> dict[str, Any]:
    """Send `share` (0..1) of the items to `annotators` people each, blind to each other (admin only)."""
    return to_json(service.team.set_overlap(project, share=float(share), annotators=int(annotators),
                                            annotator=user_of(service, request)))


def agreement(service: Service, project: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Cohen's kappa and confusion per pair, Fleiss' kappa, per-annotator agreement with the final label."""
    return to_json(service.team.agreement(project, annotator=user_of(service, request)))


def review_queue(service: Service, project: str, limit: int = 100,
                 request: gr.Request | None = None) -> dict[str, Any]:
    """Overlap conflicts (who said what), label-error suspects and near-duplicates labeled differently
    (`limit`: 1 to 500 of each)."""
    return to_json(service.team.review_queue(project, annotator=user_of(service, request), limit=limit))


def resolve(service: Service, project: str, image_id: int, label: str,
            request: gr.Request | None = None) -> dict[str, Any]:
    """A reviewer's final label for an item (reviewer or admin)."""
    return to_json(service.team.resolve(project, image_id=image_id, label=label, annotator=user_of(service, request)))


def history(service: Service, project: str, user: str = "", action: str = "", image_id: int | None = None,
            limit: int = 200, request: gr.Request | None = None) -> list[dict[str, Any]]:
    """Events newest first, filtered by user, action and image (empty: any); `limit` 1 to 5,000."""
    return to_json(service.team.history(project, by=user or None, action=action or None,
                                        image_id=None if image_id in (None, "") else image_id,
                                        limit=limit, annotator=user_of(service, request)))


def release_leases(service: Service, project: str = "", request: gr.Request | None = None) -> dict[str, Any]:
    """Give back every item the logged-in user holds (of one project when given)."""
    return {"released": service.team.release_leases(user_of(service, request), project or None)}


def renew_leases(service: Service, request: gr.Request | None = None) -> dict[str, Any]:
    """Keep the logged-in user's items theirs a while longer (the Label view's heartbeat)."""
    return {"renewed": service.team.renew_leases(user_of(service, request))}


def close_session(service: Service, request: gr.Request | None = None) -> int:
    """The page was closed or the client disconnected: give back the items of the session's user.
    An unload carries no login cookie from gradio_client, so the user is looked up by the session."""
    name = getattr(request, "username", None) if request is not None else None
    return service.team.close_session(getattr(request, "session_hash", None), name=name or None)
