"""The CSV writer's cells (tables._csv_values) are rows.row's values, in COLUMNS order, split last, each
written by the generic rule: None empty, text through the formula escape, floats as repr."""

from __future__ import annotations

from datetime import datetime

from core.export.records import Record
from core.export.rows import COLUMNS, Item, row
from core.export.tables import _csv_values, csv_safe


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str):
        return csv_safe(value)
    return repr(value) if isinstance(value, float) else value


def test_csv_values_follow_row() -> None:
    labeled = Record(image_id=7, path="a/b.jpg", file_path="/m/b.jpg", sha256="ab" * 32, width=3, height=4,
                     label="cat", source="model", confidence=0.75, annotator="ann", model_id="m",
                     model_version="v", timestamp=datetime(2026, 1, 2, 3, 4, 5), agreement="single")
    bare = Record(image_id=8, path="c.png", file_path="", sha256="", width=0, height=0, label=None, source=None,
                  confidence=None, annotator=None, model_id=None, model_version=None, timestamp=None)
    risky = Record(image_id=9, path="=HYPERLINK(1)", file_path="", sha256="", width=1, height=1, label="+cat",
                   source="human", confidence=None, annotator="@ann", model_id="-m", model_version="\tv",
                   timestamp=None, agreement="'=x")
    for record in (labeled, bare, risky):
        for split in (None, "val"):
            data = row(record, file="=f" if record is risky else "f", split=split)
            columns = COLUMNS + (("split",) if split else ())
            file = "=f" if record is risky else "f"
            assert _csv_values(Item(record, split), file) == [_cell(data.get(c)) for c in columns]
