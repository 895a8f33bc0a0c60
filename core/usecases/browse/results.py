"""What the browse use case answers: frozen dataclasses for pages and hits, TypedDicts for the
dashboard's free-form JSON parts (counts per source, the curve, throughput)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypedDict

from core.usecases.results import Progress

__all__ = [
    "Accuracy", "AnnotatorRate", "ClassCount", "ClassifierReport", "CurvePoint", "Dashboard", "GridItem", "GridPage",
    "HourCount", "ImageFile", "ImageRef", "RunAccuracy", "SearchHit", "SearchResult", "Throughput",
]


class ImageRef(Protocol):
    """Anything that names an image's readable copy: an ImageFile, a grid item, a queue Item."""

    @property
    def sha256(self) -> str | None: ...

    @property
    def file_path(self) -> str: ...


@dataclass(frozen=True)
class ImageFile:
    image_id: int
    path: str          # as imported
    file_path: str     # the readable copy
    sha256: str | None


@dataclass(frozen=True)
class GridItem:
    image_id: int
    path: str
    file_path: str
    sha256: str | None
    confidence: float
    group: int         # near-duplicate group: the image_id of its leader on the page


@dataclass(frozen=True)
class GridPage:
    label: str
    page: int
    pages: int
    total: int
    items: tuple[GridItem, ...]


@dataclass(frozen=True)
class SearchHit:
    image_id: int
    path: str
    file_path: str
    sha256: str | None
    score: float
    label: str | None  # its current label, if any


@dataclass(frozen=True)
class SearchResult:
    text: str
    items: tuple[SearchHit, ...]


# "import" is a keyword, hence the functional syntax
ClassCount = TypedDict("ClassCount", {"label": str, "human": int, "import": int, "review": int, "model": int})


class RunAccuracy(TypedDict):
    run_id: int
    model_version: str | None
    created_at: str
    compared: int
    agree: int
    accuracy: float | None


class Accuracy(TypedDict):
    """Agreement of stored predictions with the human labels made after them (95% Wilson interval)."""

    estimate: float | None
    compared: int
    agree: int
    low: float
    high: float
    per_run: list[RunAccuracy]


class ClassifierReport(TypedDict):
    """The live classifier's blend (core.labeling.adapt's report())."""

    version: str
    num_labels: int
    penalty: float
    cv_accuracy: float | None
    cv_zero_shot_accuracy: float | None
    gate: float | None


class CurvePoint(TypedDict):
    labels: int
    accuracy: float
    evaluated: int
    version: str


class AnnotatorRate(TypedDict):
    annotator: str
    decisions: int
    accept: int
    correct: int
    skip: int
    undo: int
    active_minutes: float
    per_hour: float | None


class HourCount(TypedDict):
    annotator: str
    hour: str
    decisions: int


class Throughput(TypedDict):
    annotators: list[AnnotatorRate]
    timeline: list[HourCount]


@dataclass(frozen=True)
class Dashboard:
    progress: Progress
    classes: tuple[ClassCount, ...]
    sources: dict[str, int]
    accuracy: Accuracy
    classifier: ClassifierReport | None
    curve: tuple[CurvePoint, ...]
    throughput: Throughput
