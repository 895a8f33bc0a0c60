"""What the regions use case answers: frozen dataclasses, ready to render (overlay PNG bytes, with
their data URL) or to send as JSON (`as_json`: COCO RLE dicts, plain numbers, no bytes)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.segment.view import colour as instance_colour  # noqa: F401  (the n-th instance's colour in `overlay`)
from core.usecases.results import Guess, jsonable


def data_url(png: bytes | None) -> str | None:
    """A PNG as a `data:` URL for an <img> (None stays None)."""
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def as_json(result: Any) -> Any:
    """A result (or a list of them) as plain JSON values (core.usecases.results.jsonable), without
    the PNG bytes: the API sends masks as COCO RLE."""
    return _drop_bytes(jsonable(result))


def _drop_bytes(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_bytes(v) for k, v in value.items() if not isinstance(v, bytes)}
    if isinstance(value, list):
        return [_drop_bytes(v) for v in value]
    return value


@dataclass(frozen=True)
class ImageInfo:
    """A usable image of the project: what SAM, CLIP and the view need to find it."""

    image_id: int
    project_id: int
    sha256: str
    file_path: str
    path: str           # as imported (shown to people)
    width: int
    height: int


LabelScore = Guess  # one of CLIP's classes for a region: the same shape as an image's guesses


@dataclass(frozen=True)
class CandidateMask:
    """One of SAM's masks for a click, made at display size: box and area in image pixels."""

    index: int
    score: float
    area: int
    bbox: tuple[float, ...]
    png: bytes = field(repr=False)

    @property
    def png_url(self) -> str | None:
        return data_url(self.png)


@dataclass(frozen=True)
class Segmentation:
    """SAM's candidate masks for the prompts, and the one it rates best."""

    image_id: int
    width: int
    height: int
    masks: tuple[CandidateMask, ...]
    best: int
    prompts: dict[str, Any]
    ms: float


@dataclass(frozen=True)
class RleMask:
    """One of SAM's masks at the image's full size, as COCO RLE."""

    index: int
    score: float
    area: int
    rle: dict[str, Any]


@dataclass(frozen=True)
class RleSegmentation:
    image_id: int
    masks: tuple[RleMask, ...]
    best: int
    prompts: dict[str, Any]


@dataclass(frozen=True)
class InstanceInfo:
    """A saved region: its class, box (COCO [x, y, w, h]), area and where it came from."""

    id: int
    image_id: int
    label: str | None
    bbox: tuple[float, ...]
    area: int
    score: float | None
    label_confidence: float | None
    source: str
    deleted: bool


@dataclass(frozen=True)
class UndoResult:
    undone: str
    event_id: int
    image_id: int
    instance_id: int | None
    proposal_id: int | None


@dataclass(frozen=True)
class ProposalInfo:
    """An open region proposal with CLIP's top classes; `png` is its overlay at display size."""

    id: int
    image_id: int
    rle: dict[str, Any]
    bbox: tuple[float, ...]
    area: int
    predicted_iou: float
    uncertainty: float
    status: str
    top: tuple[LabelScore, ...]
    png: bytes | None = field(default=None, repr=False)

    @property
    def png_url(self) -> str | None:
        return data_url(self.png)


@dataclass(frozen=True)
class ProposalDecision:
    proposal: int
    status: str
    instance: InstanceInfo | None = None


@dataclass(frozen=True)
class ProposeSummary:
    images: int
    proposed: int
    weak: int           # dropped: CLIP's best class below min_confidence
    duplicates: int     # dropped: already an instance or a proposal (open, accepted or rejected)
    errors: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class EmbedReport:
    images: int
    computed: int
    cached: int
    errors: tuple[dict[str, str], ...]
    model_id: str


@dataclass(frozen=True)
class ImageRegions:
    """What the region view shows of an image: the display copy, every instance drawn into one PNG,
    how many proposals are open, and whether a click will wait for the encoder."""

    image: ImageInfo
    display: Path | None            # the display copy (None when the file cannot be read)
    instances: tuple[InstanceInfo, ...]
    overlay: bytes | None = field(repr=False)
    open_proposals: int
    encoding: bool                  # the image's embedding is still being computed
    problem: str | None             # why Segment Anything is not available

    @property
    def overlay_url(self) -> str | None:
        return data_url(self.overlay)
