"""The API of the web app: module-level functions of plain values, `service` first. `build_app`
binds each to the service with `gr.api(..., api_name=<function name>)`; the views call them too.
Results are JSON-ready dicts (times as ISO strings)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import gradio as gr

from core.usecases.projects.classes import validate_classes
from core.errors import InvalidInput, PermissionDenied
from core.service import Service
from core.store.repo import ClassSpec
from webapp.wiring import acting_user

ACTIONS = ("accept", "correct", "skip")
TOP_K = 5


def user_of(service: Service, request: gr.Request | None) -> str:
    """The acting user. Without a login that is the configured single user, which a store in team
    mode (someone has a password) refuses: a server started before the first user was added."""
    name = acting_user(request, default="")
    if name:
        return name
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


def jsonable(value: Any) -> Any:
    """Times as ISO strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def api_result(value: Any) -> Any:
    """What API clients get: JSON-ready, with an image's `path` named `original_path` as in the store
    (gradio_client would take any {"path": str} for a file to download)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {("original_path" if k == "path" else k): api_result(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [api_result(v) for v in value]
    return value


# -- projects and classes ----------------------------------------------------------------------


def list_projects(service: Service) -> list[str]:
    """Names of all projects."""
    return service.projects.names()


def create_project(service: Service, name: str, classes: str, request: gr.Request | None = None) -> dict[str, Any]:
    """A new project; `classes` is comma- or newline-separated class names."""
    specs = validate_classes([ClassSpec(n) for n in _names(classes, field="classes")], source="classes")
    return service.projects.create(name, classes=specs, annotator=user_of(service, request))


def project_info(service: Service, project: str) -> dict[str, Any]:
    """The project's classes (description, prompts, labels) and its model."""
    return service.projects.info(project)


def add_class(service: Service, project: str, name: str, description: str = "", prompts: str = "",
              request: gr.Request | None = None) -> dict[str, Any]:
    """Add a class; `prompts` one per line (empty: the prompt templates)."""
    return service.projects.add_class(project, name, description=description, prompts=_lines(prompts),
                             annotator=user_of(service, request))


def rename_class(service: Service, project: str, label: str, new_name: str,
                 request: gr.Request | None = None) -> dict[str, Any]:
    """Rename a class; its labels keep pointing at it."""
    return service.projects.rename_class(project, label, new_name, annotator=user_of(service, request))


def describe_class(service: Service, project: str, label: str, description: str = "",
                   prompts: str = "", request: gr.Request | None = None) -> dict[str, Any]:
    """Set a class's description and custom prompts (one per line; empty: the templates)."""
    return service.projects.describe_class(project, label, description=description, prompts=_lines(prompts),
                                  annotator=user_of(service, request))


def class_usage(service: Service, project: str, label: str) -> dict[str, Any]:
    """How many images carry the class, and how many events and predictions mention it."""
    return service.projects.class_usage(project, label)


def merge_classes(service: Service, project: str, source: str, target: str,
                  request: gr.Request | None = None) -> dict[str, Any]:
    """Move every image labeled `source` to `target`, then retire `source`."""
    return service.projects.merge_classes(project, source, target, annotator=user_of(service, request))


def delete_class(service: Service, project: str, label: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Unlabel the images carrying `label`, then retire it (archived if history mentions it)."""
    return service.projects.delete_class(project, label, annotator=user_of(service, request))


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
    return service.jobs.start_import(project, paths, labels_from=labels_from or None, embed=embed, uploaded=True,
                                annotator=user_of(service, request))


def import_folder(service: Service, project: str, folder: str, labels_from: str = "", embed: bool = True,
                  request: gr.Request | None = None) -> dict[str, Any]:
    """Import a folder (recursive) or zip file on the server in the background; returns the job."""
    if not (folder or "").strip():
        raise InvalidInput("folder: give a folder or zip file path on the server")
    return service.jobs.start_import(project, [folder.strip()], labels_from=labels_from or None, embed=embed,
                                annotator=user_of(service, request))


def embed(service: Service, project: str, arch: str = "", pretrained: str = "",
          request: gr.Request | None = None) -> dict[str, Any]:
    """Embed and predict in the background, with this model (empty: the project's model)."""
    return service.jobs.start_embed(project, arch=arch or None, pretrained=pretrained if arch or pretrained else None,
                               annotator=user_of(service, request))


def predict(service: Service, project: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Store fresh pseudo-labels from the current classifier, in the background."""
    return service.jobs.start_predict(project, annotator=user_of(service, request))


def jobs(service: Service, project: str = "") -> list[dict[str, Any]]:
    """Background jobs, newest first (of one project when given)."""
    return service.jobs.list(project or None)


def job(service: Service, job_id: str) -> dict[str, Any]:
    """One background job: status, stage, progress, result or error."""
    return service.jobs.get(job_id)


def model_status(service: Service, project: str = "") -> dict[str, Any]:
    """Load the project's model (or the configured one): ok, or why not and how to fix it."""
    problem = service.jobs.model_problem(project or None)
    return {"ok": problem is None, "error": problem}


# -- labeling ----------------------------------------------------------------------------------


def next_item(service: Service, project: str, request: gr.Request | None = None) -> dict[str, Any]:
    """The next image to label with its top-k and why it was queued (item None when done)."""
    items = service.labeling.next_items(project, annotator=user_of(service, request), n=1, k=TOP_K)
    return {"item": items[0] if items else None, "progress": service.labeling.progress(project)}


def decide(service: Service, project: str, image_id: int, action: str, label: str = "",
           request: gr.Request | None = None) -> dict[str, Any]:
    """accept (the proposal, or `label`), correct (to `label`) or skip one image; then the next item."""
    if action not in ACTIONS:
        raise InvalidInput(f"action: unknown '{action}' (valid: {', '.join(ACTIONS)})")
    user = user_of(service, request)
    result = service.labeling.decide(project, image_id=int(image_id), action=action, label=label or None, annotator=user)
    return {"decision": result, **next_item(service, project, request)}


def undo(service: Service, project: str, request: gr.Request | None = None) -> dict[str, Any]:
    """Undo your latest decision in the project."""
    return service.labeling.undo(project, annotator=user_of(service, request))


def label_many(service: Service, project: str, image_ids: list[int], action: str, label: str = "",
               request: gr.Request | None = None) -> list[dict[str, Any]]:
    """The same decision on several images (accept takes each proposal when `label` is empty)."""
    if action not in ACTIONS:
        raise InvalidInput(f"action: unknown '{action}' (valid: {', '.join(ACTIONS)})")
    if not image_ids:
        raise InvalidInput("image_ids: select at least one image")
    return service.labeling.decide_many(project, image_ids=[int(i) for i in image_ids], action=action, label=label or None,
                               annotator=user_of(service, request))


# -- browsing, review, dashboard ---------------------------------------------------------------


def grid_page(service: Service, project: str, label: str, page: int = 0, page_size: int = 48) -> dict[str, Any]:
    """Unlabeled images predicted as `label`, most confident first, near-duplicates grouped."""
    return service.browse.grid(project, label, page=int(page), page_size=int(page_size))


def search(service: Service, project: str, text: str, limit: int = 48, unlabeled_only: bool = False) -> dict[str, Any]:
    """Images whose embeddings best match `text` (CLIP text-to-image similarity)."""
    return service.browse.search(project, text, limit=int(limit), unlabeled_only=unlabeled_only)


def suspects(service: Service, project: str, limit: int = 50) -> dict[str, Any]:
    """Human labels the model contradicts, and near-duplicates labeled differently."""
    return service.labeling.suspects(project, limit=int(limit))


def dashboard(service: Service, project: str) -> dict[str, Any]:
    """Counts per class and source, progress, estimated accuracy, efficiency curve, throughput."""
    return jsonable(service.browse.dashboard(project))
