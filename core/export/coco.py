"""COCO: categories, every image (labeled or not), and annotations, streamed as JSON.

For classification each labeled image gets one image-level annotation (category_id, no bbox) that
carries its provenance. `annotations_for` is the one place that turns a record into annotations:
instance masks and boxes (RLE/polygons, bbox, area) are added there once regions exist."""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import IO, Any

from core.export.rows import ExportMeta, Item, Rows, place, provenance, split_folder
from core.records import Record


def categories(classes: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"id": k, "name": name, "supercategory": ""} for k, name in enumerate(classes, start=1)]


def annotations_for(record: Record, *, category_ids: dict[str, int], next_id: int) -> list[dict[str, Any]]:
    """The annotations of one image: an image-level label for classification (none if unlabeled)."""
    if record.label is None:
        return []
    return [{"id": next_id, "image_id": record.image_id, "category_id": category_ids[record.label],
             "iscrowd": 0, "provenance": provenance(record)}]


class CocoStream:
    """One COCO file written incrementally: images go straight to the file, annotations to a spool
    that is appended when the file is closed. Memory holds one image at a time."""

    def __init__(self, handle: IO[str], meta: ExportMeta, *, split: str | None) -> None:
        self.handle = handle
        self.spool: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.images = self.annotations = 0
        info = {"description": f"clipmark export of project {meta.project}", "version": "1.0",
                "date_created": datetime.now(UTC).isoformat(), "split": split, "options": meta.options.summary()}
        handle.write('{"info": ' + json.dumps(info, ensure_ascii=False) + ', "licenses": [], "categories": '
                     + json.dumps(categories(meta.classes), ensure_ascii=False) + ', "images": [')

    def add(self, record: Record, *, file_name: str, category_ids: dict[str, int], next_id: int) -> int:
        image = {"id": record.image_id, "file_name": file_name, "width": record.width, "height": record.height,
                 "sha256": record.sha256 or None, "path": record.path}
        self.handle.write(("," if self.images else "") + "\n" + json.dumps(image, ensure_ascii=False))
        self.images += 1
        for annotation in annotations_for(record, category_ids=category_ids, next_id=next_id):
            self.spool.write(("," if self.annotations else "") + "\n" + json.dumps(annotation, ensure_ascii=False))
            self.annotations += 1
            next_id += 1
        return next_id

    def close(self) -> None:
        self.handle.write('\n], "annotations": [')
        self.spool.seek(0)
        while chunk := self.spool.read(1 << 20):
            self.handle.write(chunk)
        self.handle.write("\n]}\n")
        self.spool.close()


def coco_file(split: str | None) -> str:
    return "annotations.json" if split is None else f"annotations_{split}.json"


def write_coco(target, rows: Rows, meta: ExportMeta) -> None:  # type: ignore[no-untyped-def]
    category_ids = {name: k for k, name in enumerate(meta.classes, start=1)}
    splits: tuple[str | None, ...] = meta.split_names or (None,)
    with ExitStack() as stack:
        streams = {split: CocoStream(stack.enter_context(target.open_text(coco_file(split))), meta, split=split)
                   for split in splits}
        next_id = 1
        for item in rows:
            file_name = _file_name(target, item, meta)
            next_id = streams[item.split].add(item.record, file_name=file_name, category_ids=category_ids,
                                              next_id=next_id)
        for stream in streams.values():
            stream.close()


def _file_name(target, item: Item, meta: ExportMeta) -> str:  # type: ignore[no-untyped-def]
    if meta.link is None:
        return item.record.file_path
    return place(target, item, folder=split_folder("images", item.split), link=meta.link)
