"""Defect 13 of issue 12: CSV cells a spreadsheet would run as a formula are escaped with a leading `'`
(OWASP), and the CSV label import reverses it, so hostile class names round-trip exactly."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from core.config import Settings
from core.export.tables import FORMULA_START, csv_safe, csv_unescaped
from core.service import Service
from core.store.repo import ClassSpec

HOSTILE = ("=cmd|' /C calc'!A0", "-1", "+1", "@SUM(A1:A9)", "'=quoted", "'plain", "=HYPERLINK(\"x\")")


@pytest.mark.parametrize(("value", "written"), [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("-1", "'-1"), ("+1", "'+1"), ("@x", "'@x"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("'=x", "''=x"), ("''-x", "'''-x"),
    ("'plain", "'plain"), ("cat", "cat"), ("", ""), ("a=b", "a=b"), ("'", "'"),
])
def test_csv_safe(value: str, written: str) -> None:
    assert csv_safe(value) == written
    assert csv_unescaped(written) == value


@given(st.text(alphabet=st.sampled_from("'=+-@\t\rab"), max_size=8) | st.text(max_size=12))
def test_escape_is_reversible_and_never_leaves_a_formula(value: str) -> None:
    written = csv_safe(value)
    assert csv_unescaped(written) == value
    assert not written.startswith(FORMULA_START)


def _images(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for k in range(count):
        Image.new("RGB", (8, 8), (k * 30, 255 - k * 30, k)).save(folder / f"img{k}.png")
    return folder


def _service(tmp_path: Path, name: str, classes: tuple[str, ...], images: Path) -> Service:
    service = Service(Settings(db=str(tmp_path / f"{name}.sqlite"), media_dir=tmp_path / f"media-{name}"))
    service.projects.create("p", classes=[ClassSpec(c) for c in classes])
    service.importing.images("p", [images], progress=False)
    return service


def _labels(service: Service) -> dict[str, str]:
    from sqlalchemy import select

    from core.store.schema import CurrentLabel, LabelClass
    from core.store.schema import Image as ImageRow

    with service.context.sessions.begin() as session:
        rows = session.execute(select(ImageRow.sha256, LabelClass.name)
                               .join(CurrentLabel, CurrentLabel.image_id == ImageRow.id)
                               .join(LabelClass, LabelClass.id == CurrentLabel.label_id))
        return {sha: name for sha, name in rows}


def test_hostile_class_names_are_escaped_and_round_trip(tmp_path: Path) -> None:
    images = _images(tmp_path / "images", len(HOSTILE))
    source = _service(tmp_path, "source", HOSTILE, images)
    for image_id, label in zip(range(1, len(HOSTILE) + 1), HOSTILE, strict=True):
        source.labeling.decide("p", image_id=image_id, action="correct", label=label, annotator="alice")
    source.exporting.export("p", fmt="csv", out=tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not any(cell.startswith(FORMULA_START) for cell in cells)
    assert "'=cmd|' /C calc'!A0" in cells and "'-1" in cells and "''=quoted" in cells
    expected = _labels(source)
    assert sorted(expected.values()) == sorted(HOSTILE)
    again = _service(tmp_path, "again", HOSTILE, images)
    report = again.importing.labels("p", tmp_path / "out.csv", fmt="csv", include="all")
    assert report["labeled"] == len(HOSTILE) and _labels(again) == expected
    added = _service(tmp_path, "added", ("cat",), images)
    report = added.importing.labels("p", tmp_path / "out.csv", fmt="csv", include="all", add_classes=True)
    assert sorted(report["added_classes"]) == sorted(HOSTILE) and _labels(added) == expected
    for service in (source, again, added):
        service.close()
