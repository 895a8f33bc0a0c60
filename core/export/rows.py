"""What every export says about one image, and the shared plumbing of the writers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from core.export.names import image_file_name
from core.export.options import ExportOptions
from core.export.records import Record

COLUMNS = ("path", "sha256", "label", "source", "confidence", "model_id", "model_version", "annotator",
           "timestamp", "agreement", "image_id", "file", "width", "height")
PROVENANCE = ("source", "confidence", "annotator", "model_id", "model_version", "timestamp", "agreement")
HUMAN_SOURCES = ("human", "import", "review")


@dataclass(frozen=True)
class Item:
    """One record on its way out, with the split it belongs to (None without a split)."""

    record: Record
    split: str | None


@dataclass(frozen=True)
class ExportMeta:
    project: str
    classes: tuple[str, ...]           # in project order; COCO ids and ClassLabel indices follow it
    split_names: tuple[str, ...]       # () without a split
    options: ExportOptions
    has_instances: bool = False        # COCO then keeps image-level labels on the images, not as annotations

    @property
    def link(self) -> str | None:
        return self.options.link


Rows = Iterable[Item]


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with its offset (the store keeps naive UTC)."""
    return None if value is None else value.replace(tzinfo=UTC).isoformat()


def provenance(record: Record) -> dict[str, Any]:
    return {"source": record.source, "confidence": record.confidence, "annotator": record.annotator,
            "model_id": record.model_id, "model_version": record.model_version,
            "timestamp": timestamp(record.timestamp), "agreement": record.agreement}


def row(record: Record, *, file: str, split: str | None) -> dict[str, Any]:
    """The CSV/JSONL row: identity, label, provenance, where the image file is."""
    data = {"path": record.path, "sha256": record.sha256 or None, "label": record.label, **provenance(record),
            "image_id": record.image_id, "file": file, "width": record.width, "height": record.height}
    if split is not None:
        data["split"] = split
    return data


def export_name(record: Record) -> str:
    """The file name the image of `record` gets in an export (before any clash is resolved)."""
    suffix = PurePosixPath(record.file_path.replace("\\", "/")).suffix.lstrip(".")
    return image_file_name(record.path, image_id=record.image_id, fmt=suffix or None)


def place(target: Any, item: Item, *, folder: str, link: str, name: str | None = None) -> str:
    """Copy or link the image of `item` into `folder` of the export (as `name`, default its export
    name; a variant if taken); returns its relative path."""
    record = item.record
    return target.place_image(record.file_path, folder, name or export_name(record), link=link,
                              image_id=record.image_id, sha256=record.sha256)


def split_folder(base: str, split: str | None) -> str:
    return f"{base}/{split}" if split else base
