"""COCO: categories, every image (labeled or not), and annotations, streamed as JSON.

For classification each labeled image gets one image-level annotation (category_id, no bbox) that
carries its provenance. Each region instance gets an instance annotation (segmentation as compressed
RLE or polygons, bbox, area, score, provenance). `annotations_for` is the one place that turns a
record into annotations."""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import IO, Any

from core.export.records import Record
from core.export.rows import ExportMeta, Item, Rows, place, provenance, split_folder, timestamp
from core.segment.masks import mask_to_polygons, rle_decode


def categories(classes: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"id": k, "name": name, "supercategory": ""} for k, name in enumerate(classes, start=1)]


def annotations_for(record: Record, *, category_ids: dict[str, int], next_id: int,
                    masks: str = "rle", image_level: bool = True) -> list[dict[str, Any]]:
    """The annotations of one image: its image-level label (none if unlabeled, or when
    `image_level` is off: exports with instances keep it on the image entry, so that every
    annotation has a box and a mask, as detection tools and COCOeval require), then one annotation
    per region instance with the mask as RLE or (`masks="polygons"`) polygons."""
    found: list[dict[str, Any]] = []
    if record.label is not None and image_level:
        found.append({"id": next_id, "image_id": record.image_id, "category_id": category_ids[record.label],
                      "iscrowd": 0, "provenance": provenance(record)})
    for instance in record.instances:
        found.append({"id": next_id + len(found), "image_id": record.image_id,
                      "category_id": category_ids[instance["label"]],
                      "segmentation": segmentation(instance["rle"], masks=masks),
                      "area": instance["area"], "bbox": instance["bbox"], "iscrowd": 0,
                      "score": instance["score"], "provenance": instance_provenance(instance)})
    return found


def segmentation(rle: dict[str, Any], *, masks: str) -> dict[str, Any] | list[list[float]]:
    """The stored RLE, or the mask's COCO polygons (the RLE again where the mask yields none)."""
    if masks == "rle":
        return {"size": list(rle["size"]), "counts": rle["counts"]}
    polygons = [p for p in mask_to_polygons(rle_decode(rle)) if len(p) >= 6]  # >= 3 points
    return polygons or {"size": list(rle["size"]), "counts": rle["counts"]}


def instance_provenance(instance: dict[str, Any]) -> dict[str, Any]:
    return {"instance_id": instance["id"], "source": instance["source"], "annotator": instance["annotator"],
            "segmenter_id": instance["segmenter_id"], "label_confidence": instance["label_confidence"],
            "timestamp": timestamp(instance["timestamp"])}


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

    def add(self, record: Record, *, file_name: str, category_ids: dict[str, int], next_id: int,
            masks: str = "rle", image_level: bool = True) -> int:
        image = {"id": record.image_id, "file_name": file_name, "width": record.width, "height": record.height,
                 "sha256": record.sha256 or None, "path": record.path}
        if not image_level and record.label is not None:
            image.update(label=record.label, label_provenance=provenance(record))
        self.handle.write(("," if self.images else "") + "\n" + json.dumps(image, ensure_ascii=False))
        self.images += 1
        for annotation in annotations_for(record, category_ids=category_ids, next_id=next_id, masks=masks,
                                          image_level=image_level):
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
                                              next_id=next_id, masks=meta.options.masks,
                                              image_level=not meta.has_instances)
        for stream in streams.values():
            stream.close()


def _file_name(target, item: Item, meta: ExportMeta) -> str:  # type: ignore[no-untyped-def]
    if meta.link is None:
        return item.record.file_path
    return place(target, item, folder=split_folder("images", item.split), link=meta.link)
