"""CSV and JSON Lines: one row per image, labeled or not, with its provenance columns."""

from __future__ import annotations

import csv
import json

from core.export.rows import COLUMNS, ExportMeta, Rows, place, row, split_folder


def _file_of(target, item, meta: ExportMeta) -> str:  # type: ignore[no-untyped-def]
    if meta.link is None:
        return item.record.file_path
    return place(target, item, folder=split_folder("images", item.split), link=meta.link)


def write_csv(target, rows: Rows, meta: ExportMeta) -> None:  # type: ignore[no-untyped-def]
    columns = COLUMNS + (("split",) if meta.split_names else ())
    with target.open_text("labels.csv") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for item in rows:
            data = row(item.record, file=_file_of(target, item, meta), split=item.split)
            writer.writerow({k: "" if v is None else (repr(v) if isinstance(v, float) else v)
                             for k, v in data.items()})


def write_jsonl(target, rows: Rows, meta: ExportMeta) -> None:  # type: ignore[no-untyped-def]
    with target.open_text("labels.jsonl") as handle:
        for item in rows:
            data = row(item.record, file=_file_of(target, item, meta), split=item.split)
            handle.write(json.dumps(data, ensure_ascii=False) + "\n")
