"""YOLO detection and segmentation, the Ultralytics layout: `images/<split>/<name>`, one
`labels/<split>/<stem>.txt` per image with a line per region instance, and `data.yaml`.

The class index is the class's position in the project's class list (0-based; archived classes keep
theirs). Coordinates are normalised by the mask's size, which is the image's. Detection lines are
`cls cx cy w h`; segmentation lines `cls x1 y1 x2 y2 ...`, the largest polygon of the mask (a YOLO
segment is one polygon), or the box's corners for a mask too small to yield one. The driver passes
the images with an instance or a person's class label; one without instances gets an empty label file
(a background image)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from core.errors import Conflict
from core.export.names import alternative_name
from core.export.rows import ExportMeta, Item, Rows, export_name, place, split_folder
from core.segment.masks import mask_to_polygons, rle_decode

Line = Callable[[dict[str, Any], int], str]


def write_yolo_detect(target, rows: Rows, meta: ExportMeta) -> None:  # type: ignore[no-untyped-def]
    _write(target, rows, meta, line=box_line)


def write_yolo_segment(target, rows: Rows, meta: ExportMeta) -> None:  # type: ignore[no-untyped-def]
    _write(target, rows, meta, line=polygon_line)


def _write(target, rows: Rows, meta: ExportMeta, *, line: Line) -> None:  # type: ignore[no-untyped-def]
    index = {name: k for k, name in enumerate(meta.classes)}
    for item in rows:
        text = "".join(line(instance, index[instance["label"]]) + "\n" for instance in item.record.instances)
        name = _label_file(target, item, text)
        rel = place(target, item, folder=split_folder("images", item.split), link=meta.link or "copy", name=name)
        if PurePosixPath(rel).name != name:  # cannot happen: names are reserved through their label file
            raise Conflict(f"image {item.record.image_id}: '{rel}' does not match its label file '{name}'")
    with target.open_text("data.yaml") as handle:
        handle.write(data_yaml(meta))


def _label_file(target, item: Item, text: str) -> str:  # type: ignore[no-untyped-def]
    """Write labels/<split>/<stem>.txt under the first free stem; returns the image name that goes
    with it (Ultralytics finds a label by the image's stem, so stems must be unique, not just names)."""
    name, image_id = export_name(item.record), item.record.image_id
    folder = split_folder("labels", item.split)
    for attempt in range(1000):
        candidate = name if attempt == 0 else alternative_name(name, image_id=image_id, attempt=attempt)
        try:
            with target.open_text(f"{folder}/{candidate.rsplit('.', 1)[0]}.txt") as handle:
                handle.write(text)
        except FileExistsError:
            continue
        return candidate
    raise Conflict(f"image {image_id}: no free label file name in '{folder}' after 1000 attempts")


def box_line(instance: dict[str, Any], cls: int) -> str:
    """`cls cx cy w h`, normalised."""
    height, width = instance["rle"]["size"]
    x, y, w, h = instance["bbox"]
    return _line(cls, [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height])


def polygon_line(instance: dict[str, Any], cls: int) -> str:
    """`cls x1 y1 x2 y2 ...`: the largest polygon of the mask, normalised."""
    height, width = instance["rle"]["size"]
    polygons = [p for p in mask_to_polygons(rle_decode(instance["rle"])) if len(p) >= 6]
    points = max(polygons, key=polygon_area) if polygons else _box_corners(instance["bbox"])
    return _line(cls, [v / (width if k % 2 == 0 else height) for k, v in enumerate(points)])


def polygon_area(flat: list[float]) -> float:
    """Shoelace area of a COCO flat polygon [x1, y1, x2, y2, ...]."""
    xy = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
    x, y = xy[:, 0], xy[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _box_corners(bbox: list[float]) -> list[float]:
    x, y, w, h = bbox
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def _line(cls: int, values: list[float]) -> str:
    return " ".join([str(cls), *(f"{min(max(v, 0.0), 1.0):.6f}" for v in values)])


def data_yaml(meta: ExportMeta) -> str:
    """The Ultralytics dataset file: root, split folders, class names by index (strings JSON-quoted,
    which YAML reads as double-quoted scalars)."""
    splits = meta.split_names or ("train", "val")
    lines = [f"# clipmark export of project {json.dumps(meta.project, ensure_ascii=False)} ({meta.options.fmt})",
             "# path: where this folder was written; after moving it, edit or delete it (Ultralytics then",
             "# uses the folder of this file)",
             f"path: {json.dumps(str(meta.options.out), ensure_ascii=False)}"]
    lines += [f"{split}: {json.dumps(split_folder('images', split if meta.split_names else None))}"
              for split in splits]
    lines += [f"nc: {len(meta.classes)}", "names:"]
    lines += [f"  {k}: {json.dumps(name, ensure_ascii=False)}" for k, name in enumerate(meta.classes)]
    return "\n".join(lines) + "\n"
