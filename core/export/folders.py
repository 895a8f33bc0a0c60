"""Class-folder layouts: `[split/]<class>/<image>`, read by torchvision's ImageFolder, the Hugging
Face `imagefolder` loader, and (with train/val splits) YOLO classification training.

Folders cannot hold unlabeled images; the driver leaves them out and reports how many. Class names
become safe, unique folder names; the manifest maps each folder back to its class."""

from __future__ import annotations

from core.export.names import class_folders
from core.export.rows import ExportMeta, Rows, place


def write_imagefolder(target, rows: Rows, meta: ExportMeta) -> None:  # type: ignore[no-untyped-def]
    folders = class_folders(meta.classes)
    for item in rows:
        label = item.record.label
        if label is None:  # the driver filters these out; a writer never invents a class
            continue
        folder = folders[label] if item.split is None else f"{item.split}/{folders[label]}"
        place(target, item, folder=folder, link=meta.link or "copy")


write_yolo = write_imagefolder  # the classification layout is the same, always split (train/val[/test])
