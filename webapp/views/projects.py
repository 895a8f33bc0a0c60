"""The Projects tab: create a project, edit its classes (delete and merge ask first, saying how
many labels they touch), import images (upload or a server folder) and choose the model. Import,
embedding and prediction run as background jobs; their progress is shown at the top of the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from core.errors import InvalidInput
from core.service import Service
from core.usecases.jobs.results import JobStatus
from webapp import render, team
from webapp.handlers import user_of
from webapp.views import Ctx, need_project

MAX_CLASSES_TYPED = 1000  # a person types a handful; a pasted list beyond this is a file's job


def note(text: str) -> str:
    return f'<div class="cm-last" role="status">{render.esc(text)}</div>'


def job_note(job: JobStatus) -> str:
    return note(f"Started {job.kind} job {job.job_id} for {job.project}: progress is shown at the top.")


def lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def class_names(text: str | None) -> list[str]:
    """Comma- or newline-separated names, blanks dropped (the use case validates each)."""
    names = [part.strip() for line in (text or "").splitlines() for part in line.split(",") if part.strip()]
    if not names:
        raise InvalidInput("classes: give at least one name (comma or newline separated)")
    if len(names) > MAX_CLASSES_TYPED:
        raise InvalidInput(f"classes: {len(names):,} names; at most {MAX_CLASSES_TYPED:,} here "
                           "(use `clipmark init --labels-file` for more)")
    return names


def ui_create(service: Service, name: str, classes: str, request: gr.Request | None = None) -> tuple[Any, str]:
    created = service.projects.create(name, classes=class_names(classes), annotator=user_of(service, request))
    return (gr.update(choices=service.projects.names(), value=created.project),
            note(f"Created {created.project} with {len(created.classes)} classes. Import images next."))


def ui_project(service: Service, project: str | None) -> tuple[list[list[Any]], Any, Any, str, str]:
    """The class table, the two class pickers, and the project's model."""
    if not project:
        return [], gr.update(choices=[], value=None), gr.update(choices=[], value=None), "", ""
    info = service.projects.info(project)
    rows = [[c.label, c.description or "", "\n".join(c.prompts), c.labels] for c in info.classes]
    names = list(info.labels)
    return (rows, gr.update(choices=names, value=names[0] if names else None), gr.update(choices=names, value=None),
            info.model.arch, info.model.pretrained or "none")


def ui_pick_class(service: Service, project: str | None, label: str | None) -> tuple[str, str, str]:
    """Fill the edit fields with the chosen class."""
    if not project or not label:
        return "", "", ""
    for c in service.projects.info(project).classes:
        if c.label == label:
            return c.label, c.description or "", "\n".join(c.prompts)
    return "", "", ""


def ui_add_class(service: Service, project: str | None, name: str, description: str, prompts: str,
                 request: gr.Request | None = None) -> str:
    added = service.projects.add_class(need_project(project), name, description=description, prompts=lines(prompts),
                                       annotator=user_of(service, request))
    return note(f"{'Restored' if added.restored else 'Added'} class {added.label}.")


def ui_rename(service: Service, project: str | None, label: str | None, new_name: str,
              request: gr.Request | None = None) -> str:
    renamed = service.projects.rename_class(need_project(project), label or "", new_name,
                                            annotator=user_of(service, request))
    return note(f"Renamed {renamed.was} to {renamed.label} ({renamed.labels} labels keep it).")


def ui_describe(service: Service, project: str | None, label: str | None, description: str, prompts: str,
                request: gr.Request | None = None) -> str:
    service.projects.describe_class(need_project(project), label or "", description=description,
                                    prompts=lines(prompts), annotator=user_of(service, request))
    return note(f"Saved the description and prompts of {label}; pseudo-labels use them from now on.")


def ui_ask(service: Service, project: str | None, op: str, label: str | None, target: str | None,
           request: gr.Request | None = None) -> tuple[str, Any, dict[str, Any] | None]:
    """The confirmation of a merge or delete, saying how many labels it touches."""
    usage = service.projects.class_usage(need_project(project), label or "", annotator=user_of(service, request))
    touched = f"{usage.labels} image{'s' if usage.labels != 1 else ''}"
    if op == "merge":
        if not target:
            return note("Choose the class to merge into."), gr.update(visible=False), None
        text = (f"Merge {label} into {target}? {touched} labeled {label} will be relabeled {target}, "
                f"and {label} retired.")
    else:
        text = f"Delete {label}? {touched} labeled {label} will become unlabeled."
    if usage.events or usage.predictions:
        text += " The history mentions it, so it is archived, not erased."
    return note(text), gr.update(visible=True), {"op": op, "label": label, "target": target}


def ui_ask_merge(service: Service, project: str | None, label: str | None, target: str | None,
                 request: gr.Request | None = None) -> tuple[str, Any, dict[str, Any] | None]:
    return ui_ask(service, project, "merge", label, target, request)


def ui_ask_delete(service: Service, project: str | None, label: str | None,
                  request: gr.Request | None = None) -> tuple[str, Any, dict[str, Any] | None]:
    return ui_ask(service, project, "delete", label, None, request)


def ui_confirm(service: Service, project: str | None, pending: dict[str, Any] | None,
               request: gr.Request | None = None) -> tuple[str, Any, None]:
    project = need_project(project)
    if not pending:
        raise InvalidInput("confirm: nothing is waiting for confirmation")
    user = user_of(service, request)
    if pending["op"] == "merge":
        merged = service.projects.merge_classes(project, pending["label"], pending["target"], annotator=user)
        text = f"Merged {merged.source} into {merged.target}: {merged.moved} labels moved."
    else:
        deleted = service.projects.delete_class(project, pending["label"], annotator=user)
        text = f"Deleted {deleted.label}: {deleted.unlabeled} images are unlabeled again."
    return note(text), gr.update(visible=False), None


def ui_cancel() -> tuple[str, Any, None]:
    return note("Cancelled."), gr.update(visible=False), None


def upload_paths(files: list[Any] | None) -> list[str]:
    """The File component hands over paths (or FileData-like objects); only their paths are kept."""
    return [str(item.get("path") if isinstance(item, dict) else getattr(item, "path", item)) for item in files or []]


def ui_import_files(service: Service, project: str | None, files: list[Any] | None, labels_from: str, embed: bool,
                    request: gr.Request | None = None) -> str:
    job = service.jobs.start_import(need_project(project), upload_paths(files), labels_from=labels_from or None,
                                    embed=embed, uploaded_to=Path(gr.utils.get_upload_folder()),
                                    annotator=user_of(service, request))
    return job_note(job)


def ui_import_folder(service: Service, project: str | None, folder: str, labels_from: str, embed: bool,
                     request: gr.Request | None = None) -> str:
    if not (folder or "").strip():
        raise InvalidInput("folder: give a folder or zip file path on the server")
    job = service.jobs.start_import(need_project(project), [folder.strip()], labels_from=labels_from or None,
                                    embed=embed, annotator=user_of(service, request))
    return job_note(job)


def ui_embed(service: Service, project: str | None, arch: str, pretrained: str,
             request: gr.Request | None = None) -> str:
    job = service.jobs.start_embed(need_project(project), arch=arch or None,
                                   pretrained=pretrained if arch or pretrained else None,
                                   annotator=user_of(service, request))
    return job_note(job)


def ui_predict(service: Service, project: str | None, request: gr.Request | None = None) -> str:
    return job_note(service.jobs.start_predict(need_project(project), annotator=user_of(service, request)))


def ui_running_jobs(service: Service, request: gr.Request | None = None) -> Any:
    """The unfinished jobs this person may cancel (their own; every job for admins)."""
    jobs = [j for j in service.jobs.list(annotator=user_of(service, request)) if not j.finished]
    choices = [(f"{j.kind} · {j.project or 'server'} · {j.status} ({j.job_id})", j.job_id) for j in jobs]
    return gr.update(choices=choices, value=choices[0][1] if choices else None)


def ui_cancel_job(service: Service, job_id: str | None, request: gr.Request | None = None) -> str:
    if not job_id:
        raise InvalidInput("job: choose a running job to cancel")
    job = service.jobs.cancel(job_id, annotator=user_of(service, request))
    if job.status == "cancelled":
        return note(f"Cancelled {job.kind} job {job.job_id} before it started.")
    if job.finished:
        return note(f"The {job.kind} job {job.job_id} had already finished ({job.status}).")
    return note(f"Stopping {job.kind} job {job.job_id}: it stops after the current file and keeps what it did.")


def ui_overlap(service: Service, project: str | None, share: float, annotators: float,
               request: gr.Request | None = None) -> str:
    done = team.set_overlap(service, need_project(project), share, int(annotators), request)
    return note(f"Overlap saved: {render.pct(done['overlap'])} of the items go to {done['overlap_annotators']} "
                "annotators each, blind to each other's answers.")


def ui_check_model(service: Service, project: str | None) -> str:
    problem = service.jobs.model_problem(project or None)
    return note("The model loads.") if problem is None else render.banner(problem)


def build(ctx: Ctx) -> None:
    common: dict[str, Any] = {"api_visibility": "undocumented"}
    status = gr.HTML(elem_id="cm-projects-status")
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("### New project")
            name = gr.Textbox(label="Name", elem_id="cm-new-name")
            classes = gr.Textbox(label="Classes", lines=3, placeholder="cat, dog, bird (or one per line)",
                                 elem_id="cm-new-classes")
            create = gr.Button("Create project", variant="primary", elem_id="cm-create")
            gr.Markdown("### Import images")
            files = gr.File(label="Images or zip files", file_count="multiple", file_types=["image", ".zip"],
                            elem_id="cm-upload")
            folder = gr.Textbox(label="...or a folder / zip file on the server", placeholder="/data/photos")
            labels_from = gr.Dropdown(["", "folders"], value="", label="Labels from (folders: parent folder = class)")
            then_embed = gr.Checkbox(True, label="Embed and pseudo-label after import")
            with gr.Row():
                upload = gr.Button("Import uploaded files", variant="primary", elem_id="cm-import-upload")
                from_folder = gr.Button("Import server folder")
            with gr.Row():
                running = gr.Dropdown(label="Running jobs", choices=[], elem_id="cm-running-jobs", scale=3)
                refresh_jobs = gr.Button("↻", size="sm", scale=0, elem_id="cm-refresh-jobs")
                cancel_job = gr.Button("Cancel job", variant="stop", scale=1, elem_id="cm-cancel-job")
        with gr.Column():
            gr.Markdown("### Classes")
            table = gr.Dataframe(headers=["class", "description", "prompts", "labels"], interactive=False, wrap=True)
            chosen = gr.Dropdown(label="Class", choices=[])
            new_name = gr.Textbox(label="Name (new class, or new name)")
            description = gr.Textbox(label="Description (used in the prompts)")
            prompts = gr.Textbox(label="Custom prompts, one per line (empty: the templates)", lines=2)
            with gr.Row():
                add = gr.Button("Add class")
                rename = gr.Button("Rename")
                describe = gr.Button("Save description and prompts")
            with gr.Row():
                target = gr.Dropdown(label="Merge into", choices=[])
                merge = gr.Button("Merge...")
                delete = gr.Button("Delete...", variant="stop")
            with gr.Row(visible=False) as confirm_row:
                confirm = gr.Button("Confirm", variant="stop")
                cancel = gr.Button("Cancel")
            gr.Markdown("### Model")
            arch = gr.Textbox(label="Architecture (open_clip)")
            pretrained = gr.Textbox(label="Weights: hub tag, local checkpoint file, or none")
            with gr.Row():
                check = gr.Button("Check model")
                embed = gr.Button("Embed with this model")
                refresh = gr.Button("Refresh pseudo-labels")
            gr.Markdown("### Team: overlap")
            with gr.Row():
                share = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Share of items labeled by several people")
                people = gr.Number(2, label="People per overlap item", precision=0, minimum=2, maximum=10)
                overlap = gr.Button("Save overlap", elem_id="cm-overlap")
    pending = gr.State(None)
    project = ctx.project
    ctx.project_opens.append(create.click(ctx.fn(ui_create), [name, classes], [project, status],
                                          api_name="ui_create", **common))
    ctx.refresh_on_classes(ui_project, [project], [table, chosen, target, arch, pretrained])
    chosen.change(ctx.fn(ui_pick_class), [project, chosen], [new_name, description, prompts],
                  api_name="ui_pick_class", **common)
    ctx.class_edits += [
        add.click(ctx.fn(ui_add_class), [project, new_name, description, prompts], [status], api_name="ui_add_class",
                  **common),
        rename.click(ctx.fn(ui_rename), [project, chosen, new_name], [status], api_name="ui_rename", **common),
        describe.click(ctx.fn(ui_describe), [project, chosen, description, prompts], [status],
                       api_name="ui_describe", **common),
        confirm.click(ctx.fn(ui_confirm), [project, pending], [status, confirm_row, pending], api_name="ui_confirm",
                      **common),
    ]
    merge.click(ctx.fn(ui_ask_merge), [project, chosen, target], [status, confirm_row, pending],
                api_name="ui_ask_merge", **common)
    delete.click(ctx.fn(ui_ask_delete), [project, chosen], [status, confirm_row, pending],
                 api_name="ui_ask_delete", **common)
    cancel.click(ui_cancel, None, [status, confirm_row, pending], api_name="ui_cancel", **common)
    list_running = ctx.fn(ui_running_jobs)
    upload.click(ctx.fn(ui_import_files), [project, files, labels_from, then_embed], [status],
                 api_name="ui_import_files", **common).then(list_running, None, [running], **common)
    from_folder.click(ctx.fn(ui_import_folder), [project, folder, labels_from, then_embed], [status],
                      api_name="ui_import_folder", **common).then(list_running, None, [running], **common)
    refresh_jobs.click(list_running, None, [running], api_name="ui_running_jobs", **common)
    cancel_job.click(ctx.fn(ui_cancel_job), [running], [status], api_name="ui_cancel_job", **common).then(
        list_running, None, [running], **common)
    check.click(ctx.fn(ui_check_model), [project], [status], api_name="ui_check_model", **common)
    embed.click(ctx.fn(ui_embed), [project, arch, pretrained], [status], api_name="ui_embed", **common)
    refresh.click(ctx.fn(ui_predict), [project], [status], api_name="ui_predict", **common)
    overlap.click(ctx.fn(ui_overlap), [project, share, people], [status], api_name="ui_overlap", **common)
