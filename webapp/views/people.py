"""The History tab (every event by every user, filtered by user, action, image) and the Users tab
(admins: add, disable, change a role, list, the sign-in log). Roles are checked by the service,
whatever the page shows."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from core.service import Service
from core.usecases.results import ROLES
from webapp import render, team
from webapp.views import Ctx, need_project

HISTORY_COLUMNS = ["event_id", "at", "annotator", "action", "source", "image_id", "before", "after", "undoes",
                   "reason"]
USER_COLUMNS = ["name", "role", "disabled", "password", "created_at"]
AUTH_COLUMNS = ["id", "at", "kind", "user", "address", "detail"]


def note(text: str) -> str:
    return f'<div class="cm-last" role="status">{render.esc(text)}</div>'


def ui_history(service: Service, project: str | None, user: str, action: str | None, image_id: float | None,
               limit: float | None, request: gr.Request | None = None) -> pd.DataFrame:
    rows = team.history(service, need_project(project), (user or "").strip(), action or "",
                        None if image_id is None else int(image_id), 200 if limit is None else int(limit), request)
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def ui_users(service: Service, request: gr.Request | None = None) -> pd.DataFrame:
    return pd.DataFrame(team.list_users(service, request), columns=USER_COLUMNS)


def ui_add_user(service: Service, name: str, role: str, password: str,
                request: gr.Request | None = None) -> tuple[Any, str, str]:
    was_team = service.team.team_mode()
    added = team.add_user(service, (name or "").strip(), role, password or "", request)
    text = f"Added {added['name']} ({added['role']})."
    if not was_team:
        text += (" Team mode is on from now: only users with a password act (give an admin one too), and the "
                 "server must be restarted to ask for logins.")
        return gr.update(), "", note(text)  # this page has no login, so it may not list the users any more
    return ui_users(service, request), "", note(text)


def ui_disable_user(service: Service, name: str, request: gr.Request | None = None) -> tuple[pd.DataFrame, str]:
    done = team.disable_user(service, (name or "").strip(), request)
    return ui_users(service, request), note(f"Disabled {done['name']}; {done['leases_released']} item(s) went back.")


def ui_set_role(service: Service, name: str, role: str, request: gr.Request | None = None) -> tuple[pd.DataFrame, str]:
    done = team.set_role(service, (name or "").strip(), role, request)
    return ui_users(service, request), note(f"{done['name']} is now {done['role']} (was {done['before']}).")


def ui_auth_events(service: Service, request: gr.Request | None = None) -> pd.DataFrame:
    return pd.DataFrame(team.auth_events(service, 200, request), columns=AUTH_COLUMNS)


def build_history(ctx: Ctx) -> None:
    with gr.Row():
        user = gr.Textbox(label="User (empty: everyone)", elem_id="cm-history-user")
        action = gr.Dropdown(["", *team.HISTORY_ACTIONS], value="", label="Action (empty: all)")
        image_id = gr.Number(None, label="Image id (empty: all)", precision=0)
        limit = gr.Number(200, label="At most", precision=0, minimum=1, maximum=5000)
    show = gr.Button("Show history", variant="primary", elem_id="cm-history-show")
    table = gr.Dataframe(headers=HISTORY_COLUMNS, interactive=False, elem_id="cm-history")
    show.click(ctx.fn(ui_history), [ctx.project, user, action, image_id, limit], [table], api_name="ui_history",
               api_visibility="undocumented")


def build_users(ctx: Ctx) -> dict[str, Any]:
    common: dict[str, Any] = {"api_visibility": "undocumented"}
    status = gr.HTML(elem_id="cm-users-status")
    table = gr.Dataframe(headers=USER_COLUMNS, interactive=False, elem_id="cm-users")
    with gr.Row():
        name = gr.Textbox(label="Name", elem_id="cm-user-name")
        role = gr.Dropdown(list(ROLES), value="annotator", label="Role")
        password = gr.Textbox(label="Password (8+ characters)", type="password", elem_id="cm-user-password")
    with gr.Row():
        add = gr.Button("Add user", variant="primary", elem_id="cm-user-add")
        set_role = gr.Button("Change role", elem_id="cm-user-role")
        disable = gr.Button("Disable user", variant="stop")
    log_button = gr.Button("Show the sign-in log", size="sm", elem_id="cm-auth-log-show")
    log = gr.Dataframe(headers=AUTH_COLUMNS, interactive=False, elem_id="cm-auth-log")
    add.click(ctx.fn(ui_add_user), [name, role, password], [table, password, status], api_name="ui_add_user",
              **common)
    disable.click(ctx.fn(ui_disable_user), [name], [table, status], api_name="ui_disable_user", **common)
    set_role.click(ctx.fn(ui_set_role), [name, role], [table, status], api_name="ui_set_role", **common)
    log_button.click(ctx.fn(ui_auth_events), None, [log], api_name="ui_auth_events", **common)
    return {"show": (ctx.fn(ui_users), None, [table])}
