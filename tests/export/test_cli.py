"""The `export` and `import-labels` commands: the same use cases through the front door."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli import build_parser, main
from core.export import FORMATS, IMPORT_FORMATS
from tests.export.conftest import Built


def _choices(command: str, flag: str) -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]  # noqa: SLF001
    return list(next(a for a in sub._actions if flag in a.option_strings).choices)  # noqa: SLF001


def test_cli_choices_are_the_registries() -> None:
    assert _choices("export", "--format") == list(FORMATS)
    assert _choices("import-labels", "--format") == list(IMPORT_FORMATS)


def test_cli_export_then_import_labels(built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "coco"
    argv = ["export", "--db", built.db, "--project", built.name, "--format", "coco", "--out", str(out),
            "--include", "human", "--status", "labeled", "--link", "copy"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["images"] == 19 and report["files"] == 20
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["init", "--db", built.db, "--project", "again", "--labels", "airplane,automobile,bird,cat"]) == 0
    assert main(["import", "--db", built.db, "--project", "again", str(built.root)]) == 0
    capsys.readouterr()
    assert main(["import-labels", "--db", built.db, "--project", "again", str(out), "--format", "coco"]) == 0
    captured = capsys.readouterr()
    assert "labeled 18, unchanged 0, kept existing 0, unmatched 0" in captured.out
    assert "unknown class 'ship' (1 rows)" in captured.err
