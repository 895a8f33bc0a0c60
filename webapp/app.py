"""The clipmark web app. `build_app(service)` lays out the tabs and wires module-level handlers;
`serve(...)` (behind `clipmark serve` / `clipmark demo`) makes the service and launches it, with
logins checked against the store once the store is in team mode (a user has a password)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr

from core.service import Service, Settings
from webapp import handlers, region_api, render, team
from webapp.login import launch_options
from webapp.payloads import to_json
from webapp.views import Ctx, dashboard, export, grid, label, people, projects, review, search
from webapp.wiring import bind

# Every endpoint of the documented API: api_name = the function's name (docs/webapp.md lists them).
API = (
    handlers.list_projects, handlers.create_project, handlers.project_info, handlers.add_class,
    handlers.rename_class, handlers.describe_class, handlers.class_usage, handlers.merge_classes,
    handlers.delete_class, handlers.import_files, handlers.import_folder, handlers.embed, handlers.predict,
    handlers.jobs, handlers.job, handlers.cancel_job, handlers.model_status, handlers.next_item, handlers.decide,
    handlers.undo,
    handlers.label_many, handlers.grid_page, handlers.search, handlers.suspects, handlers.dashboard,
    team.whoami, team.add_user, team.list_users, team.disable_user, team.set_overlap, team.agreement,
    team.review_queue, team.resolve, team.history, team.release_leases, team.set_role, team.auth_events,
    *region_api.ENDPOINTS,
)
JOB_POLL_S = 1.0
RENEW_S = 60.0  # the Label view's heartbeat; a lease lasts core.leases.LEASE_SECONDS (10 min)
LOGOUT_JS = "() => { window.location.href = 'logout'; }"


def asset(name: str) -> str:
    return (Path(__file__).parent / name).read_text(encoding="utf-8")


def ui_restore(service: Service, saved: str | None) -> Any:
    """On page load: the project list, and the project this browser had open (else the first)."""
    names = service.projects.names()
    if not names:  # nothing to restore; an answer arriving late must not blank a project created meanwhile
        return gr.skip()
    return gr.update(choices=names, value=saved if saved in names else names[0])


def ui_jobs(service: Service, project: str | None, request: gr.Request | None = None) -> str:
    """Progress of your background jobs (every job, for admins) of this project and of no project."""
    listed = to_json(service.jobs.list(annotator=handlers.user_of(service, request)))
    return render.jobs([j for j in listed if not project or j["project"] in (project, "")], now=time.time())


def remember(project: str | None) -> str | None:
    return project


def ui_whoami(service: Service, request: gr.Request | None = None) -> tuple[str, Any, Any]:
    """Who is signed in; the Users tab for admins, the logout button in team mode."""
    me = team.whoami(service, request)
    text = f"Signed in as {me['user']}" if me["team"] else f"Single-user mode, acting as {me['user']}"
    return (f'<div class="cm-who">{render.esc(text)}</div>', gr.update(visible=me["admin"]),
            gr.update(visible=me["team"]))


def ui_release(service: Service, request: gr.Request | None = None) -> None:
    """The page was closed or reloaded (or its client disconnected), or the user logs out: their items
    go back to the pool. An unload may come without the login cookie: the session says whose they are."""
    team.close_session(service, request)


def ui_renew(service: Service, request: gr.Request | None = None) -> None:
    team.renew_leases(service, request)


def ui_heartbeat_on(selected: gr.SelectData) -> Any:
    """Renew leases only while the Label view is shown."""
    return gr.Timer(active=selected.value == "Label")


def build_app(service: Service) -> gr.Blocks:
    """The whole app for one service. Nothing runs until it is launched."""
    gr.set_static_paths([service.workspace.thumbs.root])  # display copies are served as files
    with gr.Blocks(title="clipmark", fill_width=True) as app:
        gr.HTML("", visible="hidden", elem_id="cm-keys", js_on_load=asset("keys.js"),
                head=f"<style>{asset('style.css')}</style>")
        gr.HTML("", visible="hidden", elem_id="cm-regions-js", js_on_load=asset("regions.js"))
        with gr.Row(equal_height=True):
            gr.Markdown("## clipmark", elem_id="cm-title")
            project = gr.Dropdown(label="Project", choices=[], scale=3, elem_id="cm-project")
            with gr.Column(scale=1, min_width=160):
                who = gr.HTML(elem_id="cm-who")
                logout = gr.Button("Log out", size="sm", visible=False, elem_id="cm-logout")
        jobs = gr.HTML(elem_id="cm-jobs")
        ctx = Ctx(service=service, project=project)
        with gr.Tabs(selected="label") as tabs:
            with gr.Tab("Projects", id="projects"):
                projects.build(ctx)
            with gr.Tab("Label", id="label") as label_tab:
                label_view = label.build(ctx)
            with gr.Tab("Grid review", id="grid") as grid_tab:
                grid_view = grid.build(ctx)
            with gr.Tab("Search", id="search"):
                search.build(ctx)
            with gr.Tab("Review", id="review"):
                review.build(ctx)
            with gr.Tab("History", id="history"):
                people.build_history(ctx)
            with gr.Tab("Dashboard", id="dashboard") as dashboard_tab:
                dashboard_view = dashboard.build(ctx)
            with gr.Tab("Export", id="export"):
                export.build(ctx)
            with gr.Tab("Users", id="users", visible=False) as users_tab:
                users_view = people.build_users(ctx)
        hidden: dict[str, Any] = {"api_visibility": "undocumented", "show_progress": "hidden"}
        label_tab.select(*label_view["show"], api_name="ui_label_tab", **hidden, **label_view["events"])
        grid_tab.select(*grid_view["show"], api_name="ui_grid_tab", **hidden)
        dashboard_tab.select(*dashboard_view["show"], api_name="ui_dashboard_tab", **hidden)
        saved = gr.BrowserState(None, storage_key="clipmark-project")
        ctx.project_opens.append(app.load(bind(ui_restore, service), [saved], [project], api_name="ui_restore",
                                          **hidden))
        ctx.on_project.append((remember, [project], [saved], {}))
        ctx.wire()
        gr.Timer(JOB_POLL_S).tick(bind(ui_jobs, service), [project], [jobs], api_name="ui_jobs", **hidden)
        wire_team(app, ctx, tabs=tabs, users_tab=users_tab, users_view=users_view, who=who, logout=logout)
        for fn in API:
            gr.api(bind(fn, service, result=handlers.api_result), api_name=fn.__name__)
    return app


def wire_team(app: gr.Blocks, ctx: Ctx, *, tabs: gr.Tabs, users_tab: gr.Tab, users_view: dict[str, Any],
              who: gr.HTML, logout: gr.Button) -> None:
    """Who is signed in, the Users tab, logout, releasing leases on unload, the lease heartbeat."""
    service = ctx.service
    hidden: dict[str, Any] = {"api_visibility": "undocumented", "show_progress": "hidden"}
    app.load(bind(ui_whoami, service), None, [who, users_tab, logout], api_name="ui_whoami", **hidden)
    show_users, _, users_table = users_view["show"]
    users_tab.select(show_users, None, users_table, api_name="ui_users", **hidden)
    release = bind(ui_release, service, check_user=False)  # a closed tab gives its items back
    app.unload(release)
    logout.click(release, None, None, api_name="ui_logout", **hidden).then(None, js=LOGOUT_JS)
    heartbeat = gr.Timer(RENEW_S)
    heartbeat.tick(bind(ui_renew, service), None, None, api_name="ui_renew", **hidden)
    tabs.select(ui_heartbeat_on, None, [heartbeat], api_name="ui_heartbeat", **hidden)


def served_paths(service: Service) -> list[str]:
    """The media folders the app hands out as files: exports and display copies, never the originals
    (Gradio serves files outside the working and temp folders only from `allowed_paths`)."""
    return [str(service.exporting.folder), str(service.workspace.thumbs.root)]


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 7860, demo: bool = False,
          prevent_thread_lock: bool = False) -> tuple[gr.Blocks, Service]:
    """Make the service, (prepare the demo project,) check the model in the background, launch."""
    service = Service(settings, background_refit=True)
    if demo:
        service.prepare_demo()
    service.jobs.start_model_check()
    service.exporting.clean_interrupted()  # what an export killed mid-way left in <media>/exports
    service.importing.clean_interrupted()  # partial files of an import killed mid-way, in <media>
    app = build_app(service)
    app.queue(default_concurrency_limit=4)
    logins = launch_options(service) if service.team.team_mode() else {}  # Gradio awaits an async callable
    app.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, show_error=True,
               allowed_paths=served_paths(service),
               footer_links=["api", "gradio"], **logins,
               auth_message="clipmark: log in with the name and password your admin gave you")
    return app, service
