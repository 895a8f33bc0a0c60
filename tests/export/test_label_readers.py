"""The CSV label reader refuses files it cannot understand (defect 11 of issue 12) instead of
importing nothing without a word, and reads escaped cells back (defect 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.export.label_readers import LabelRow, Problem, read_csv


def _rows(tmp_path: Path, text: str) -> list[LabelRow | Problem]:
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    return list(read_csv(path))


@pytest.mark.parametrize(("text", "found"), [
    ("a,b,c\n1,2,3\n", "found: 'a', 'b', 'c'"),
    ("label,comment\ncat,x\n", "found: 'label', 'comment'"),
    ("cat\n", "found: 'cat'"),
    ("notes.txt,cat\n", "found: 'notes.txt', 'cat'"),
    ("", "empty"),
])
def test_unrecognised_csv_is_an_error_listing_its_columns(tmp_path: Path, text: str, found: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        _rows(tmp_path, text)
    message = str(raised.value)
    assert message.startswith(str(tmp_path / "labels.csv")) and found in message
    assert "label" in message and "path" in message  # says what it expected


def test_header_and_headerless_files_are_read(tmp_path: Path) -> None:
    rows = _rows(tmp_path, "File,Label,Source\ndir/a.jpg,cat,human\nb.png,,\n")
    assert rows == [LabelRow("cat", None, ("dir/a.jpg",), "human", f"{tmp_path / 'labels.csv'} line 2")]
    rows = _rows(tmp_path, "sha256,label\nabc,dog\n")
    assert [(r.label, r.sha256) for r in rows if isinstance(r, LabelRow)] == [("dog", "abc")]
    rows = _rows(tmp_path, "x/a.JPG,cat\nb.jpg,dog\n")
    assert [(r.keys, r.label) for r in rows if isinstance(r, LabelRow)] == [(("x/a.JPG",), "cat"), (("b.jpg",), "dog")]


def test_escaped_cells_are_read_back(tmp_path: Path) -> None:
    rows = _rows(tmp_path, "path,label\n'=a.jpg,'-1\nb.jpg,''=x\nc.jpg,'plain\n")
    assert [(r.keys, r.label) for r in rows if isinstance(r, LabelRow)] == [
        (("=a.jpg",), "-1"), (("b.jpg",), "'=x"), (("c.jpg",), "'plain")]
