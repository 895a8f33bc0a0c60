"""The registry of export formats: a dict of small writer functions and what each can hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.export.coco import write_coco
from core.export.folders import write_imagefolder, write_yolo
from core.export.hf import write_hf
from core.export.tables import write_csv, write_jsonl
from core.export.yolo_regions import write_yolo_detect, write_yolo_segment

Writer = Callable[..., None]


@dataclass(frozen=True)
class FormatSpec:
    write: Writer
    holds_unlabeled: bool                 # False: unlabeled images are left out (and counted)
    images: str                           # "reference" (path columns; --link copies them), "folder" (class
                                          # folders), "copied" (images/<split>/ beside labels/), "embedded"
    file_name: str | None = None          # the one file it writes; an --out ending in its suffix is that file
    default_split: tuple[float, ...] | None = None
    labeled_by: str = "label"             # what makes an image labeled (core.export.records.LABELED_BY)


FORMATS: dict[str, FormatSpec] = {
    "imagefolder": FormatSpec(write_imagefolder, holds_unlabeled=False, images="folder"),
    "yolo": FormatSpec(write_yolo, holds_unlabeled=False, images="folder", default_split=(0.8, 0.2)),
    "csv": FormatSpec(write_csv, holds_unlabeled=True, images="reference", file_name="labels.csv"),
    "jsonl": FormatSpec(write_jsonl, holds_unlabeled=True, images="reference", file_name="labels.jsonl"),
    "coco": FormatSpec(write_coco, holds_unlabeled=True, images="reference", file_name="annotations.json",
                       labeled_by="label_or_instance"),
    "hf": FormatSpec(write_hf, holds_unlabeled=True, images="embedded"),
    "yolo-detect": FormatSpec(write_yolo_detect, holds_unlabeled=False, images="copied", default_split=(0.8, 0.2),
                              labeled_by="human_or_instance"),
    "yolo-segment": FormatSpec(write_yolo_segment, holds_unlabeled=False, images="copied",
                               default_split=(0.8, 0.2), labeled_by="human_or_instance"),
}
