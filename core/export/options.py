"""Export options, validated once at the public boundary (messages name the flag and the choices)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInput
from core.export.records import RecordFilter

ProgressFn = Callable[[int, int], None]
LINKS = ("copy", "hardlink", "symlink")
MASKS = ("rle", "polygons")  # how coco writes instance masks
SPLIT_NAMES = {2: ("train", "val"), 3: ("train", "val", "test")}
DEFAULT_LEAK_THRESHOLD = 0.95


@dataclass(frozen=True)
class ExportOptions:
    fmt: str
    out: Path
    where: RecordFilter
    link: str | None = None              # copy | hardlink | symlink; None: images are referenced
    split: tuple[float, ...] | None = None
    seed: int = 0
    leak_threshold: float | None = DEFAULT_LEAK_THRESHOLD  # None: no leak check
    overwrite: bool = False
    progress: bool = False
    on_progress: ProgressFn | None = None
    masks: str = "rle"                   # coco segmentation: rle | polygons

    def summary(self) -> dict[str, object]:
        """The options as written into the manifest and the report."""
        return {"format": self.fmt, "include": self.where.include, "min_confidence": self.where.min_confidence,
                "status": self.where.status, "link": self.link, "split": list(self.split) if self.split else None,
                "seed": self.seed, "leak_threshold": self.leak_threshold if self.split else None,
                "masks": self.masks}


def parse_split(text: str | tuple[float, ...] | list[float] | None) -> tuple[float, ...] | None:
    """'0.8,0.1,0.1' or a sequence -> fractions of train, val(, test) that sum to 1."""
    if text is None or text == "":
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        values = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise InvalidInput(f"--split: '{text}' is not a list of numbers such as 0.8,0.1,0.1") from exc
    if len(values) not in SPLIT_NAMES:
        raise InvalidInput(f"--split: give 2 (train,val) or 3 (train,val,test) fractions, not {len(values)}")
    if any(not math.isfinite(v) or v < 0 for v in values) or values[0] <= 0:
        raise InvalidInput(f"--split: fractions must be non-negative and train above 0, got {text}")
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise InvalidInput(f"--split: fractions must sum to 1, they sum to {sum(values):g}")
    return values


def build_options(
    *, fmt: str, out: str | Path, formats: tuple[str, ...], include: str = "all", min_confidence: float = 0.0,
    status: str = "all", link: str | None = None, split: str | tuple[float, ...] | None = None, seed: int = 0,
    leak_threshold: float | None = DEFAULT_LEAK_THRESHOLD, overwrite: bool = False, progress: bool = False,
    on_progress: ProgressFn | None = None, masks: str = "rle",
) -> ExportOptions:
    if fmt not in formats:
        raise InvalidInput(f"--format: unknown '{fmt}' (valid: {', '.join(formats)})")
    if link is not None and link not in LINKS:
        raise InvalidInput(f"--link: unknown '{link}' (valid: {', '.join(LINKS)})")
    if masks not in MASKS:
        raise InvalidInput(f"--masks: unknown '{masks}' (valid: {', '.join(MASKS)})")
    if leak_threshold is not None and not -1.0 <= leak_threshold <= 1.0:
        raise InvalidInput(f"--leak-threshold: {leak_threshold} is not a cosine between -1 and 1")
    if not str(out).strip():
        raise InvalidInput("--out: give an output file or folder")
    return ExportOptions(
        fmt=fmt, out=Path(out).expanduser().absolute(),
        where=RecordFilter(include=include, min_confidence=float(min_confidence), status=status),
        link=link, split=parse_split(split), seed=int(seed), leak_threshold=leak_threshold,
        overwrite=overwrite, progress=progress, on_progress=on_progress, masks=masks,
    )
