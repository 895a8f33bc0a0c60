"""The Projects tab: create a project, edit its classes (delete and merge ask first, saying how
many labels they touch), import images (upload or a server folder) and choose the model. Import,
embedding and prediction run as background jobs; their progress is shown at the top of the page."""

from __future__ import annotations

from typing import Any, cast

import gradio as gr

from core.errors import InvalidInput
from core.service import Service
from webapp import handlers, render, team
from webapp.views import Ctx, need_project


def note(text: str) -> str:
    return f'<div class="cm-last" role="status">{render.esc(text)}</div>'


def job_note(job: dict[str, Any]) -> str:
    return note(f"Started {job['kind']} job {job['job_id']} for {job['project']}: progress is shown at the top.")


def ui_create(service: Service, name: str, classes: str, request: gr.Request | None = None) -> tuple[Any, str]:
    created = handlers.create_project(service, name, classes, request)
    return (gr.update(choices=service.projects.names(), value=created["project"]),
            note(f"Created {created['project']} with {len(created['classes'])} classes. Import images next."))


def ui_project(service: Service, project: str | None) -> tuple[list[list[Any]], Any, Any, str, str]:
    """The class table, the two class pickers, and the project's model."""
    if not project:
        return [], gr.update(choices=[], value=None), gr.update(choices=[], value=None), "", ""
    info = service.projects.info(project)
    rows = [[c["label"], c["description"] or "", "\n".join(c["prompts"]), c["labels"]] for c in info["classes"]]
    names = [c["label"] for c in info["classes"]]
    return (rows, gr.update(choices=names, value=names[0] if names else None), gr.update(choices=names, value=None),
            info["model"]["arch"], info["model"]["pretrained"] or "none")


def ui_pick_class(service: Service, project: str | None, label: str | None) -> tuple[str, str, str]:
    """Fill the edit fields with the chosen class."""
    if not project or not label:
        return "", "", ""
    for c in service.projects.info(project)["classes"]:
        if c["label"] == label:
            return c["label"], c["description"] or "", "\n".join(c["prompts"])
    return "", "", ""


def ui_add_class(service: Service, project: str | None, name: str, description: str, prompts: str,
                 request: gr.Request | None = None) -> str:
    added = handlers.add_class(service, need_project(project), name, description, prompts, request)
    return note(f"{'Restored' if added['restored'] else 'Added'} class {added['label']}.")


def ui_rename(service: Service, project: str | None, label: str | None, new_name: str,
              request: gr.Request | None = None) -> str:
    renamed = handlers.rename_class(service, need_project(project), label or "", new_name, request)
    return note(f"Renamed {renamed['was']} to {renamed['label']} ({renamed['labels']} labels keep it).")


def ui_describe(service: Service, project: str | None, label: str | None, description: str, prompts: str,
                request: gr.Request | None = None) -> str:
    handlers.describe_class(service, need_project(project), label or "", description, prompts, request)
    return note(f"Saved the description and prompts of {label}; pseudo-labels use them from now on.")


def ui_ask(service: Service, project: str | None, op: str, label: str | None, target: str | None
           ) -> tuple[str, Any, dict[str, Any] | None]:
    """The confirmation of a merge or delete, saying how many labels it touches."""
    usage = handlers.class_usage(service, need_project(project), label or "")
    touched = f"{usage['labels']} image{'s' if usage['labels'] != 1 else ''}"
    if op == "merge":
        if not target:
            return note("Choose the class to merge into."), gr.update(visible=False), None
        text = (f"Merge {label} into {target}? {touched} labeled {label} will be relabeled {target}, "
                f"and {label} retired.")
    else:
        text = f"Delete {label}? {touched} labeled {label} will become unlabeled."
    if usage["events"] or usage["predictions"]:
        text += " The history mentions it, so it is archived, not erased."
    return note(text), gr.update(visible=True), {"op": op, "label": label, "target": target}


def ui_ask_merge(service: Service, project: str | None, label: str | None, target: str | None
                 ) -> tuple[str, Any, dict[str, Any] | None]:
    return ui_ask(service, project, "merge", label, target)


def ui_ask_delete(service: Service, project: str | None, label: str | None) -> tuple[str, Any, dict[str, Any] | None]:
    return ui_ask(service, project, "delete", label, None)


def ui_confirm(service: Service, project: str | None, pending: dict[str, Any] | None,
               request: gr.Request | None = None) -> tuple[str, Any, None]:
    project = need_project(project)
    if not pending:
        raise InvalidInput("confirm: nothing is waiting for confirmation")
    if pending["op"] == "merge":
        done = handlers.merge_classes(service, project, pending["label"], pending["target"], request)
        text = f"Merged {done['source']} into {done['target']}: {done['moved']} labels moved."
    else:
        done = handlers.delete_class(service, project, pending["label"], request)
        text = f"Deleted {done['label']}: {done['unlabeled']} images are unlabeled again."
    return note(text), gr.update(visible=False), None


def ui_cancel() -> tuple[str, Any, None]:
    return note("Cancelled."), gr.update(visible=False), None


def ui_import_files(service: Service, project: str | None, files: list[str] | None, labels_from: str, embed: bool,
                    request: gr.Request | None = None) -> str:
    uploads = cast(list[gr.FileData], files or [])  # the File component hands over paths; both are accepted
    return job_note(handlers.import_files(service, need_project(project), uploads, labels_from, embed, request))


def ui_import_folder(service: Service, project: str | None, folder: str, labels_from: str, embed: bool,
                     request: gr.Request | None = None) -> str:
    return job_note(handlers.import_folder(service, need_project(project), folder, labels_from, embed, request))


def ui_embed(service: Service, project: str | None, arch: str, pretrained: str,
             request: gr.Request | None = None) -> str:
    return job_note(handlers.embed(service, need_project(project), arch, pretrained, request))


def ui_predict(service: Service, project: str | None, request: gr.Request | None = None) -> str:
    return job_note(handlers.predict(service, need_project(project), request))


def ui_overlap(service: Service, project: str | None, share: float, annotators: float,
               request: gr.Request | None = None) -> str:
    done = team.set_overlap(service, need_project(project), share, int(annotators), request)
    return note(f"Overlap saved: {render.pct(done['overlap'])} of the items go to {done['overlap_annotators']} "
                "annotators each, blind to each other's answers.")


def ui_check_model(service: Service, project: str | None) -> str:
    status = handlers.model_status(service, project or "")
    return note("The model loads.") if status["ok"] else render.banner(status["error"])


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
    upload.click(ctx.fn(ui_import_files), [project, files, labels_from, then_embed], [status],
                 api_name="ui_import_files", **common)
    from_folder.click(ctx.fn(ui_import_folder), [project, folder, labels_from, then_embed], [status],
                      api_name="ui_import_folder", **common)
    check.click(ctx.fn(ui_check_model), [project], [status], api_name="ui_check_model", **common)
    embed.click(ctx.fn(ui_embed), [project, arch, pretrained], [status], api_name="ui_embed", **common)
    refresh.click(ctx.fn(ui_predict), [project], [status], api_name="ui_predict", **common)
    overlap.click(ctx.fn(ui_overlap), [project, share, people], [status], api_name="ui_overlap", **common)
