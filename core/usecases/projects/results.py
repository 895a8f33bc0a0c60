"""What the projects use case answers: frozen dataclasses (the CLI and the web app print them
through `core.usecases.results.jsonable`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ClassAdded", "ClassDeleted", "ClassDescribed", "ClassInfo", "ClassRenamed", "ClassUsage", "ClassesMerged",
    "Created", "Failure", "LatestPrediction", "ModelSpec", "ProjectInfo", "ProjectStatus"
]


@dataclass(frozen=True)
class Created:
    project: str
    id: int
    classes: tuple[str, ...]


@dataclass(frozen=True)
class ClassInfo:
    """A class as the project describes it: its text, prompts and how many images carry it."""

    label: str
    description: str | None
    prompts: tuple[str, ...]
    labels: int


@dataclass(frozen=True)
class ModelSpec:
    arch: str
    pretrained: str | None


@dataclass(frozen=True)
class ProjectInfo:
    project: str
    images: int
    model: ModelSpec
    classes: tuple[ClassInfo, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """The class names, in the project's order."""
        return tuple(c.label for c in self.classes)


@dataclass(frozen=True)
class Failure:
    """An image the import could not read, and why."""

    file: str
    reason: str


@dataclass(frozen=True)
class LatestPrediction:
    run_id: int
    model_id: str
    model_version: str | None
    prompts_hash: str | None
    created_at: str


@dataclass(frozen=True)
class ProjectStatus:
    project: str
    images: int
    failed: tuple[Failure, ...]
    embedded: dict[str, int]          # model id -> images embedded with it
    labeled: int
    classes: dict[str, dict[str, int]]  # live class -> its labels by source (human, import, review)
    latest_prediction: LatestPrediction | None


@dataclass(frozen=True)
class ClassUsage:
    """How many images carry a class now, and how many events and predictions mention it."""

    label: str
    labels: int
    events: int
    predictions: int


@dataclass(frozen=True)
class ClassAdded:
    label: str
    restored: bool   # an archived class of that name came back


@dataclass(frozen=True)
class ClassRenamed:
    label: str
    was: str
    labels: int
    events: int
    predictions: int


@dataclass(frozen=True)
class ClassDescribed:
    label: str
    description: str | None
    prompts: tuple[str, ...] | None


@dataclass(frozen=True)
class ClassesMerged:
    source: str
    target: str
    moved: int
    archived: bool


@dataclass(frozen=True)
class ClassDeleted:
    label: str
    unlabeled: int
    archived: bool
