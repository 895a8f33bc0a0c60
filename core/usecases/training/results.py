"""What the training use case answers: a trained model's report, and `classify`'s predictions."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import InvalidInput

KINDS = ("head", "student")


@dataclass(frozen=True)
class StudentOptions:
    """How to train a student: the timm name, epochs, input size, batch, decoding workers, whether to
    start from ImageNet weights (when reachable), and whether to resume an interrupted run."""

    name: str = "mobilenetv3_small_100"
    epochs: int = 5
    image_size: int = 224
    batch_size: int = 64
    num_workers: int | None = None   # None: 1 on CPU, up to 8 on a GPU
    pretrained: bool = True
    resume: bool = False

    def __post_init__(self) -> None:
        for name, low, high in (("epochs", 1, 1000), ("image_size", 16, 1024), ("batch_size", 1, 4096)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise InvalidInput(f"--{name.replace('_', '-')}: a whole number from {low} to {high}, got {value!r}")
        if self.num_workers is not None and (not isinstance(self.num_workers, int) or self.num_workers < 0):
            raise InvalidInput(f"--workers: a whole number >= 0, got {self.num_workers!r}")


@dataclass(frozen=True)
class ClassScore:
    name: str
    support: int          # held-out human labels of this class
    correct: int
    precision: float | None
    recall: float | None


@dataclass(frozen=True)
class Evaluation:
    """The model on the held-out human labels (never trained on)."""

    images: int
    accuracy: float | None
    interval: tuple[float, float] | None   # 95% Wilson interval of the accuracy
    per_class: tuple[ClassScore, ...]
    confusion: tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted
    confusion_png: str | None


@dataclass(frozen=True)
class TrainReport:
    """One `clipmark train` run: where the model is, what it learned from, how it scores."""

    kind: str
    project: str
    folder: str
    zip_path: str | None
    class_names: tuple[str, ...]
    model_id: str
    trained_on: int                 # human labels trained on
    pseudo_labels: int              # confident pseudo-labels trained on (student)
    label_sources: dict[str, int]
    evaluation: Evaluation
    agreement: float | None         # student vs the CLIP classifier on held-out unlabeled images
    agreement_images: int
    failed_images: tuple[str, ...]  # files that did not decode during training (skipped)
    images_per_second: float | None
    steps: int
    resumed_from: int | None
    weights: str                    # where the student's initial weights came from
    audit_estimate: str
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Prediction:
    path: str
    label: str
    confidence: float
    top_k: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class ClassifyReport:
    model: str
    predictions: tuple[Prediction, ...]
    errors: tuple[str, ...]
    out: str | None
