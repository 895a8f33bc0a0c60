"""CSV and JSON Lines: one row per image, labeled or not, with its provenance columns.

CSV cells that a spreadsheet would run as a formula (starting with = + - @ tab or carriage return,
OWASP's list) get a leading `'`; so does a cell already starting with `'` before such a character,
which makes the escape reversible: `csv_unescaped(csv_safe(x)) == x` for every string."""

from __future__ import annotations

import csv
import json

from core.export.rows import COLUMNS, ExportMeta, Rows, place, row, split_folder, timestamp

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(text: str) -> str:
    """`text` with a `'` in front when a spreadsheet would take it for a formula."""
    return "'" + text if text.lstrip("'").startswith(FORMULA_START) else text


def csv_unescaped(text: str) -> str:
    """The inverse of csv_safe (applied by the CSV label import)."""
    return text[1:] if text.startswith("'") and text.lstrip("'").startswith(FORMULA_START) else text


RISKY_FIRST = frozenset("'" + "".join(FORMULA_START))  # a cell starting otherwise is written as it is


def _file_of(target, item, meta: ExportMeta) -> str:  # type: ignore[no-untyped-def]
    if meta.link is None:
        return item.record.file_path
    return place(target, item, folder=split_folder("images", item.split), link=meta.link)


def write_csv(target, rows: Rows, meta: ExportMeta) -> None:  # type: ignore[no-untyped-def]
    columns = COLUMNS + (("split",) if meta.split_names else ())
    with target.open_text("labels.csv") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for item in rows:  # a list per row: DictWriter's per-row dict checks cost a third of the export
            writer.writerow(_csv_values(item, _file_of(target, item, meta)))


def _text(value: str | None) -> str:
    return "" if value is None else csv_safe(value) if value[:1] in RISKY_FIRST else value


def _csv_values(item, file: str) -> list[object]:  # type: ignore[no-untyped-def]
    """rows.row's values in COLUMNS order (+ the split) as CSV cells, without building its dict: text
    that people or models chose goes through the formula escape (_text), ids and sizes are ints, the
    confidence a float's repr, the timestamp ISO (tests/export/test_csv_values.py checks them against
    rows.row with the generic rule)."""
    r = item.record
    values = [_text(r.path), r.sha256 or "", _text(r.label), r.source or "",
              "" if r.confidence is None else repr(r.confidence), _text(r.model_id), _text(r.model_version),
              _text(r.annotator), timestamp(r.timestamp) or "", _text(r.agreement), r.image_id, _text(file),
              r.width, r.height]
    return values if item.split is None else [*values, _text(item.split)]


def write_jsonl(target, rows: Rows, meta: ExportMeta) -> None:  # type: ignore[no-untyped-def]
    with target.open_text("labels.jsonl") as handle:
        for item in rows:
            data = row(item.record, file=_file_of(target, item, meta), split=item.split)
            handle.write(json.dumps(data, ensure_ascii=False) + "\n")
