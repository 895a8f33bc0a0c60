"""Defect 12 of issue 12: a folder export's zip is written under a temporary name and renamed, a
SIGKILL while zipping leaves no `.zip`, and the leftovers of interrupted exports are removed at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.export.archive import is_interrupted, remove_interrupted, zip_folder_atomically
from core.export.atomic import ExportTarget

ROOT = Path(__file__).resolve().parents[2]


def _export_folder(folder: Path) -> Path:
    (folder / "train" / "cat").mkdir(parents=True)
    (folder / "train" / "empty").mkdir()
    (folder / "train" / "cat" / "a.jpg").write_bytes(b"\xff\xd8" + bytes(range(256)) * 40)
    (folder / "manifest.json").write_text('{"generator": "clipmark"}', encoding="utf-8")
    return folder


def test_zip_holds_the_folder_relative_to_it(tmp_path: Path) -> None:
    folder = _export_folder(tmp_path / "pets-imagefolder")
    made = zip_folder_atomically(folder)
    assert made == tmp_path / "pets-imagefolder.zip" and not (tmp_path / "pets-imagefolder.zip.partial").exists()
    with zipfile.ZipFile(made) as archive:
        assert archive.testzip() is None
        assert set(archive.namelist()) == {"train/", "train/cat/", "train/empty/", "train/cat/a.jpg", "manifest.json"}
        assert archive.read("train/cat/a.jpg") == (folder / "train" / "cat" / "a.jpg").read_bytes()
        assert archive.getinfo("train/cat/a.jpg").compress_type == zipfile.ZIP_STORED
        assert archive.getinfo("manifest.json").compress_type == zipfile.ZIP_DEFLATED


def test_a_failure_while_zipping_leaves_neither_zip_nor_partial(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = _export_folder(tmp_path / "x")

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "write", broken)
    with pytest.raises(OSError, match="No space"):
        zip_folder_atomically(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
    with pytest.raises(InvalidInput, match="not a folder"):
        zip_folder_atomically(tmp_path / "missing")


KILLED_WHILE_ZIPPING = """
import sys, time, zipfile
from core.export.archive import zip_folder_atomically
write = zipfile.ZipFile.write
def slow(self, *args, **kwargs):
    write(self, *args, **kwargs)
    print("entry", flush=True)
    time.sleep(60)
zipfile.ZipFile.write = slow
zip_folder_atomically(sys.argv[1])
"""


def test_sigkill_while_zipping_leaves_no_zip_and_start_removes_the_partial(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    folder = _export_folder(exports / "pets-coco")
    child = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_ZIPPING, str(folder)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "entry\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert not (exports / "pets-coco.zip").exists() and (exports / "pets-coco.zip.partial").is_file()
    assert remove_interrupted(exports) == 1
    assert sorted(p.name for p in exports.iterdir()) == ["pets-coco"]
    assert zipfile.ZipFile(zip_folder_atomically(folder)).testzip() is None


def test_remove_interrupted_takes_only_leftovers(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    _export_folder(exports / "done")
    (exports / "done.zip").write_bytes(b"PK")
    (exports / "labels.csv").write_text("path,label\n")
    (exports / ".hidden").write_text("not ours")
    (exports / ".looks.clipmark-tmp").write_text("a file, not a staging folder")
    (exports / "other.partial").mkdir()  # a folder named like a partial file: not ours
    (exports / "a.zip.partial").write_bytes(b"PK\x03\x04half")
    staging = ExportTarget(exports / "never-committed", single_file=None)  # as a SIGKILL mid-export leaves it
    (staging.root / "labels.csv").write_text("path,label\n")
    old = exports / ".prev.abc.clipmark-old"
    (old / "previous").mkdir(parents=True)
    assert is_interrupted(staging.root) and is_interrupted(old)
    assert remove_interrupted(exports, older_than=3600) == 0  # all fresh: a running export keeps its files
    assert remove_interrupted(exports) == 3
    assert sorted(p.name for p in exports.iterdir()) == [".hidden", ".looks.clipmark-tmp", "done", "done.zip",
                                                         "labels.csv", "other.partial"]
    assert remove_interrupted(tmp_path / "absent") == 0
