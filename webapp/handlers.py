"""The API of the web app: module-level functions of plain values, `service` first. `build_app`
binds each to the service with `gr.api(..., api_name=<function name>)`; the views call them too.
Results are JSON-ready dicts: the service's typed results through webapp.payloads.to_json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from core.errors import InvalidInput, PermissionDenied
from core.service import Service
from webapp.payloads import to_json
from webapp.wiring import acting_user, checked_user

TOP_K = 5


def user_of(service: Service, request: gr.Request | None) -> str:
    """The acting user, checked on every call: a logged-in user must still be enabled (a disabled
    user's session is signed out, PermissionDenied) and acts with their current role. Without a login
    that is the configured single user, which a store in team mode (someone has a password) refuses:
    a server started before the first user was added."""
    name = acting_user(request, default="")
    if name and checked_user(request) == name:  # checked at the start of this call (wiring.bind)
        return name
    if name:
        return service.team.signed_in(name, session=getattr(request, "session_hash", None)).user
    if service.team.team_mode():
        raise PermissionDenied("log in first: this server was started before team mode was switched on "
                               "(a user got a password); restart it to require logins")
    return service.settings.user


def _names(text: str, *, field: str) -> list[str]:
    """Comma- or newline-separated names, blanks dropped."""
    names = [part.strip() for line in (text or "").splitlines() for part in line.split(",")]
    if not [n for n in names if n]:
        raise InvalidInput(f"{field}: give at least one name (comma or newline separated)")
    return [n for n in names if n]


def json_object(text: str | None, *, field: str, example: str = "") -> dict[str, Any]:
    """A JSON object sent by the page or an API client; errors name the field (and show an example)."""
    hint = f"; give {example}" if example else ""
    try:
        data = json.loads(text or "{}")
    except ValueError as exc:
        raise InvalidInput(f"{field}: not JSON ({exc}){hint}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{field}: expected a JSON object{hint}")
    return data


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def api_result(value: Any) -> Any:
    """What API clients get: JSON-ready (to_json), with an image's `path` named `original_path` as in
    the store (gradio_client would take any {"path": str} for a file to download)."""
    return _original_paths(to_json(value))


def _original_paths(value: Any) -> Any:
    if isinstance(value, dict):
        return {("original_path" if k == "path" else k): _original_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_original_paths(v) for v in value]
    return value


# -- projects and classes ----------------------------------------------------------------------


def list_projects(service: Service) -> list[str]:
    """Names of all projects."""
    return to_json(service.projects.names())


def create_project(service: Service, name: str, classes: str, request: gr.Request | None = None) -> dict[str, Any]:
    """A new project; `classes` is comma- or newline-separated class names."""
    created = service.projects.create(name, classes=_names(classes, field="classes"),
                                      annotator=user_of(service, request))
    return to_json(created)


def project_info(service: Service, project: str) -> dict[str, Any]:
    """The project's classes (description, prompts, labels) and its model."""
    return to_json(service.projects.info(project))


def add_class(service: Service, project: str, name: str, description: str = "", prompts: str = "",
              request: gr.Request | None = None) -> dict[str, Any]:
    """Add a class; `prompts` one per line (empty: the prompt templates)."""
    added = service.projects.add_class(project, name, description=description, prompts=_lines(prompts),
                                       annotator=user_of(service, request))
    return to_json(added)


def rename_class(service: Service, project: str, label: str, new_name: str,
                 request: gr.Request | None = None) -> dict[str, Any]:
    """Rename a class; its labels keep pointing at it."""
    return to_json(service.projects.rename_class(project, label, new_name,
                                                 annotator=user_of(service, request)))


def describe_class(service: Service, project: str, label: str, description: str = "",
                   prompts: str = "", request: gr.Request | None = None) -> dict[str, Any]:
    """Set a class's description and custom prompts (one per line; empty: the templates)."""
    described = service.projects.describe_class(project, label, description=description, prompts=_lines(prompts),
                                                annotator=user_of(service, request))
    return to_json(described)


def class_usage(service: Service, project: str, label: str) -> dict[str, Any]:
    """How many images carry the class, and how many events and predictions mention it."""
    return to_json(service.projects.class_usage(project, label))


def merge_classes(service: Service, project: str, source: str, target: str,
                  request: gr.Request | None = None) -> dict[str, Any]:
    """Move every image labeled `source` to `target`, then retire `source`."""
    return to_json(service.projects.merge_classes(project, source, target,
                                                  annotator=user_of(service, request)))


def delete_class(service: Service, project: str, label: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Unlabel the images carrying `label`, then retire it (archived if history mentions it)."""
    return to_json(service.projects.delete_class(project, label, annotator=user_of(service, request)))


# -- import, model, jobs -----------------------------------------------------------------------


def _file_path(item: Any) -> str:
    """Uploads arrive as paths (components) or FileData dicts (gr.api)."""
    if isinstance(item, dict):
        return str(item.get("path") or "")
    return str(getattr(item, "path", item))


def import_files(service: Service, project: str, files: list[gr.FileData], labels_from: str = "",
                 embed: bool = True, request: gr.Request | None = None) -> dict[str, Any]:
    """Import uploaded images and zip files in the background; returns the job."""
    paths = [_file_path(f) for f in files or []]
    job = service.jobs.start_import(project, paths, labels_from=labels_from or None, embed=embed,
                                    uploaded_to=upload_folder(), annotator=user_of(service, request))
    return to_json(job)


def upload_folder() -> Path:
    """Where Gradio keeps the files a browser uploaded (GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    return Path(gr.utils.get_upload_folder())


def import_folder(service: Service, project: str, folder: str, labels_from: str = "", embed: bool = True,
                  request: gr.Request | None = None) -> dict[str, Any]:
    """Import a folder (recursive) or zip file on the server in the background; returns the job."""
    if not (folder or "").strip():
        raise InvalidInput("folder: give a folder or zip file path on the server")
    job = service.jobs.start_import(project, [folder.strip()], labels_from=labels_from or None, embed=embed,
                                    annotator=user_of(service, request))
    return to_json(job)


def embed(service: Service, project: str, arch: str = "", pretrained: str = "",
          request: gr.Request | None = None) -> dict[str, Any]:
    """Embed and predict in the background, with this model (empty: the project's model)."""
    job = service.jobs.start_embed(project, arch=arch or None, pretrained=pretrained if arch or pretrained else None,
                                   annotator=user_of(service, request))
    return to_json(job)


def predict(service: Service, project: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Store fresh pseudo-labels from the current classifier, in the background."""
    return to_json(service.jobs.start_predict(project, annotator=user_of(service, request)))


def jobs(service: Service, project: str = "", request: gr.Request | None = None) -> list[dict[str, Any]]:
    """Your background jobs (every job, for admins), newest first (of one project when given)."""
    return to_json(service.jobs.list(project or None, annotator=user_of(service, request)))


def job(service: Service, job_id: str, request: gr.Request | None = None) -> dict[str, Any]:
    """One of your background jobs: status, stage, progress, result or error."""
    return to_json(service.jobs.get(job_id, annotator=user_of(service, request)))


def cancel_job(service: Service, job_id: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Stop one of your jobs (admins: any): a queued job never runs, a running import stops between
    files and reports what it imported."""
    return to_json(service.jobs.cancel(job_id, annotator=user_of(service, request)))


def model_status(service: Service, project: str = "") -> dict[str, Any]:
    """Load the project's model (or the configured one): ok, or why not and how to fix it."""
    problem = service.jobs.model_problem(project or None)
    return {"ok": problem is None, "error": problem}


# -- labeling ----------------------------------------------------------------------------------


def next_item(service: Service, project: str, request: gr.Request | None = None) -> dict[str, Any]:
    """The next image to label with its top-k and why it was queued (item None when done)."""
    user = user_of(service, request)
    items = service.labeling.next_items(project, annotator=user, n=1, k=TOP_K)
    return to_json({"item": items[0] if items else None, "progress": service.labeling.progress(project,
                                                                                              annotator=user)})


def decide(service: Service, project: str, image_id: int, action: str, label: str = "",
           request: gr.Request | None = None) -> dict[str, Any]:
    """accept (the proposal, or `label`), correct (to `label`) or skip one image; then the next item
    (one transaction)."""
    user = user_of(service, request)
    decided = service.labeling.decide(project, image_id=image_id, action=action, label=label or None,
                                      annotator=user, next_n=1, k=TOP_K)
    return to_json({"decision": decided.decision, "item": decided.next[0] if decided.next else None,
                    "progress": service.labeling.progress(project, annotator=user)})


def undo(service: Service, project: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Undo your latest decision in the project."""
    return to_json(service.labeling.undo(project, annotator=user_of(service, request)))


def label_many(service: Service, project: str, image_ids: list[int], action: str, label: str = "",
               request: gr.Request | None = None) -> list[dict[str, Any]]:
    """The same decision on several images (accept takes each proposal when `label` is empty)."""
    if not image_ids:
        raise InvalidInput("image_ids: select at least one image")
    decisions = service.labeling.decide_many(project, image_ids=image_ids, action=action,
                                             label=label or None, annotator=user_of(service, request))
    return to_json(decisions)


# -- browsing, review, dashboard ---------------------------------------------------------------


def grid_page(service: Service, project: str, label: str, page: int = 0, page_size: int = 48) -> dict[str, Any]:
    """Unlabeled images predicted as `label`, most confident first, near-duplicates grouped."""
    return to_json(service.browse.grid(project, label, page=page, page_size=page_size))


def search(service: Service, project: str, text: str, limit: int = 48, unlabeled_only: bool = False) -> dict[str, Any]:
    """Images whose embeddings best match `text` (CLIP text-to-image similarity)."""
    return to_json(service.browse.search(project, text, limit=limit, unlabeled_only=unlabeled_only))


def suspects(service: Service, project: str, limit: int = 50) -> dict[str, Any]:
    """Human labels the model contradicts, and near-duplicates labeled differently."""
    return to_json(service.labeling.suspects(project, limit=limit))


def dashboard(service: Service, project: str) -> dict[str, Any]:
    """Counts per class and source, progress, estimated accuracy, efficiency curve, throughput."""
    return to_json(service.browse.dashboard(project))
