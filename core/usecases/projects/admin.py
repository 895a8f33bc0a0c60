"""The projects use case: create a project, list and describe projects, their status, and edit
their classes (add, rename, describe, merge, delete). Class edits forget the live state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import validation
from core.errors import InvalidInput
from core.store import repo
from core.store.repo import ClassSpec
from core.usecases.context import Context
from core.usecases.labeling.states import ProjectStates
from core.usecases.models import ModelProvider
from core.usecases.projects import class_admin
from core.usecases.projects.classes import clean_prompts, validate_classes
from core.usecases.projects.results import (
    ClassAdded,
    ClassDeleted,
    ClassDescribed,
    ClassesMerged,
    ClassInfo,
    ClassRenamed,
    ClassUsage,
    Created,
    Failure,
    LatestPrediction,
    ModelSpec,
    ProjectInfo,
    ProjectStatus,
)

Edited = TypeVar("Edited")


class Projects:
    def __init__(self, context: Context, models: ModelProvider, states: ProjectStates) -> None:
        self.context = context
        self.models = models
        self.states = states

    def create(self, name: str, *, classes: Sequence[ClassSpec | str], annotator: str | None = None) -> Created:
        """A new project with these classes (names, or ClassSpecs with their own prompts)."""
        specs = _specs(classes)
        name = validation.project_name(name, field="--project")
        try:
            with self.context.action(None, annotator=annotator, permission="manage_projects") as act:
                _check_new_name(repo.project_names(act.session), name)
                project = repo.create_project(act.session, name=name, classes=specs)
                return Created(project=project.name, id=project.id, classes=tuple(c.name for c in specs))
        except IntegrityError as exc:
            raise InvalidInput(f"--project: a project named {validation.excerpt(name)} already exists") from exc

    def names(self) -> list[str]:
        with self.context.read_sessions.begin() as session:
            return repo.project_names(session)

    def info(self, project: str, *, annotator: str | None = None) -> ProjectInfo:
        """Classes (description, prompts, images labeled with each) and the project's model."""
        with self.context.action(project, annotator=annotator, permission="view", write=False) as act:
            counts: dict[int, int] = {}
            for label_id, _, count in repo.label_counts(act.session, project_id=act.project_id):
                counts[label_id] = counts.get(label_id, 0) + count
            classes = tuple(ClassInfo(label=c.name, description=c.description, prompts=tuple(c.prompts or ()),
                                      labels=counts.get(c.id, 0))
                            for c in repo.classes_of(act.session, project_id=act.project_id))
            spec = self.models.spec(act.require_project())
            return ProjectInfo(project=project, images=repo.image_count(act.session, project_id=act.project_id),
                               model=ModelSpec(arch=spec.arch, pretrained=spec.pretrained), classes=classes)

    def status(self, project: str, *, annotator: str | None = None) -> ProjectStatus:
        with self.context.action(project, annotator=annotator, permission="view", write=False) as act:
            session, project_id = act.session, act.project_id
            counts = repo.label_counts(session, project_id=project_id)
            run = repo.latest_run(session, project_id=project_id)
            names = repo.class_names(session, project_id=project_id, include_archived=False)
            per_class: dict[str, dict[str, int]] = {n: {"human": 0, "import": 0, "review": 0} for n in names.values()}
            for label_id, source, count in counts:
                if label_id in names:
                    per_class[names[label_id]][source] = per_class[names[label_id]].get(source, 0) + count
            return ProjectStatus(
                project=project, images=repo.image_count(session, project_id=project_id),
                failed=tuple(Failure(f, r) for f, r in repo.failed_images(session, project_id=project_id)),
                embedded=dict(repo.embedded_model_ids(session, project_id=project_id)),
                labeled=sum(count for _, _, count in counts), classes=per_class,
                latest_prediction=None if run is None else LatestPrediction(
                    run_id=run.id, model_id=run.model_id, model_version=run.model_version,
                    prompts_hash=run.prompts_hash, created_at=run.created_at.isoformat()))

    # -- classes ----------------------------------------------------------------------------------

    def class_usage(self, project: str, label: str, *, annotator: str | None = None) -> ClassUsage:
        return self._edit(project, lambda s, pid, _: class_admin.usage(
            s, class_id=class_admin.find_class(s, project_id=pid, label=label).id, label=label), annotator=annotator)

    def add_class(self, project: str, name: str, *, description: str | None = None,
                  prompts: Sequence[str] | None = None, annotator: str | None = None) -> ClassAdded:
        spec = ClassSpec(class_admin.clean_name(name), validation.description(description), clean_prompts(prompts))
        return self._edit(project, lambda s, pid, _: class_admin.add_class(s, project_id=pid, spec=spec),
                          annotator=annotator)

    def rename_class(self, project: str, label: str, new_name: str, *,
                     annotator: str | None = None) -> ClassRenamed:
        return self._edit(project, lambda s, pid, _: class_admin.rename_class(
            s, project_id=pid, label=label, new_name=new_name), annotator=annotator)

    def describe_class(self, project: str, label: str, *, description: str | None = None,
                       prompts: Sequence[str] | None = None, annotator: str | None = None) -> ClassDescribed:
        return self._edit(project, lambda s, pid, _: class_admin.describe_class(
            s, project_id=pid, label=label, description=description, prompts=prompts), annotator=annotator)

    def merge_classes(self, project: str, source: str, target: str, *,
                      annotator: str | None = None) -> ClassesMerged:
        return self._edit(project, lambda s, pid, uid: class_admin.merge_classes(
            s, project_id=pid, source=source, target=target, user_id=uid), annotator=annotator)

    def delete_class(self, project: str, label: str, *, annotator: str | None = None) -> ClassDeleted:
        return self._edit(project, lambda s, pid, uid: class_admin.delete_class(
            s, project_id=pid, label=label, user_id=uid), annotator=annotator)

    def _edit(self, project: str, edit: Callable[[Session, int, int], Edited], *,
              annotator: str | None = None) -> Edited:
        with self.context.action(project, annotator=annotator, permission="manage_projects") as act:
            result = edit(act.session, act.project_id, act.annotator.id)
        self.states.forget(act.project_id)
        return result


def _specs(classes: Sequence[ClassSpec | str]) -> list[ClassSpec]:
    """Class names (blanks dropped) or specs, checked by classes.validate_classes."""
    specs = [c if isinstance(c, ClassSpec) else ClassSpec(c) for c in classes]
    return validate_classes([s for s in specs if not isinstance(s.name, str) or s.name.strip()], source="classes")


def _check_new_name(existing: Sequence[str], name: str) -> None:
    """InvalidInput when a project already has this name, ignoring case (`Cat` beside `cat`)."""
    key = validation.name_key(name)
    for other in existing:
        if validation.name_key(other) == key:
            raise InvalidInput(f"--project: a project named {validation.excerpt(other)} already exists (names "
                               "are compared ignoring case); choose another name")
