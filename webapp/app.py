"""The clipmark web app. `build_app(service)` lays out the tabs and wires module-level handlers;
`serve(...)` (behind `clipmark serve` / `clipmark demo`) makes the service and launches it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr

from core.config import Settings
from core.service import Service
from webapp import handlers, render
from webapp.views import Ctx, dashboard, export, grid, label, projects, review, search
from webapp.wiring import bind

# Every endpoint of the documented API: api_name = the function's name (docs/webapp.md lists them).
API = (
    handlers.list_projects, handlers.create_project, handlers.project_info, handlers.add_class,
    handlers.rename_class, handlers.describe_class, handlers.class_usage, handlers.merge_classes,
    handlers.delete_class, handlers.import_files, handlers.import_folder, handlers.embed, handlers.predict,
    handlers.jobs, handlers.job, handlers.model_status, handlers.next_item, handlers.decide, handlers.undo,
    handlers.label_many, handlers.grid_page, handlers.search, handlers.suspects, handlers.dashboard,
)
JOB_POLL_S = 1.0


def asset(name: str) -> str:
    return (Path(__file__).parent / name).read_text(encoding="utf-8")


def ui_restore(service: Service, saved: str | None) -> Any:
    """On page load: the project list, and the project this browser had open (else the first)."""
    names = service.project_names()
    return gr.update(choices=names, value=saved if saved in names else (names[0] if names else None))


def ui_jobs(service: Service, project: str | None) -> str:
    """Progress of the background jobs (of this project, and those of no project)."""
    return render.jobs([j for j in service.jobs() if not project or j["project"] in (project, "")], now=time.time())


def remember(project: str | None) -> str | None:
    return project


def build_app(service: Service) -> gr.Blocks:
    """The whole app for one service. Nothing runs until it is launched."""
    gr.set_static_paths([service.workspace().thumbs.root])  # display copies are served as files
    with gr.Blocks(title="clipmark", fill_width=True) as app:
        gr.HTML("", visible="hidden", elem_id="cm-keys", js_on_load=asset("keys.js"),
                head=f"<style>{asset('style.css')}</style>")
        with gr.Row(equal_height=True):
            gr.Markdown("## clipmark", elem_id="cm-title")
            project = gr.Dropdown(label="Project", choices=[], scale=3, elem_id="cm-project")
        jobs = gr.HTML(elem_id="cm-jobs")
        ctx = Ctx(service=service, project=project)
        with gr.Tabs(selected="label"):
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
            with gr.Tab("Dashboard", id="dashboard") as dashboard_tab:
                dashboard_view = dashboard.build(ctx)
            with gr.Tab("Export", id="export"):
                export.build(ctx)
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
        for fn in API:
            gr.api(bind(fn, service, result=handlers.api_result), api_name=fn.__name__)
    return app


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 7860, demo: bool = False,
          prevent_thread_lock: bool = False) -> tuple[gr.Blocks, Service]:
    """Make the service, (prepare the demo project,) check the model in the background, launch."""
    from core.demo import prepare_demo

    service = Service(settings, background_refit=True)
    if demo:
        prepare_demo(service)
    service.start_model_check()
    app = build_app(service)
    app.queue(default_concurrency_limit=4)
    app.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, show_error=True,
               footer_links=["api", "gradio"])
    return app, service
