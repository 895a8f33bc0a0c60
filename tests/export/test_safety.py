"""An export never clobbers what it should not, never writes outside its target, never leaves half
an export behind, and turns any class or file name into a safe one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from core.config import Settings
from core.errors import Conflict, ImageError, InvalidInput
from core.export.names import class_folders, image_file_name, safe_component
from core.service import Service
from core.store import repo
from core.store.repo import ClassSpec
from tests.export.conftest import Built


class Crash(Exception):
    pass


def _crash_at(n: int):  # type: ignore[no-untyped-def]
    def on_progress(done: int, total: int) -> None:
        if done >= n:
            raise Crash(f"simulated crash at {done}/{total}")
    return on_progress


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_non_empty_target_needs_overwrite_and_must_be_an_export(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "out"
    built.service.exporting.export(built.name, fmt="imagefolder", out=out)
    with pytest.raises(Conflict, match="--overwrite"):
        built.service.exporting.export(built.name, fmt="imagefolder", out=out)
    (out / "stale.txt").write_text("from before")
    report = built.service.exporting.export(built.name, fmt="jsonl", out=out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["labels.jsonl", "manifest.json"]
    assert report.counts["images"] == 40
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(Conflict, match="no clipmark manifest.json"):
        built.service.exporting.export(built.name, fmt="csv", out=mine, overwrite=True)
    assert _tree(mine) == {"thesis.tex": b"precious"}


def test_single_file_export_refuses_to_replace_without_overwrite(built: Built, tmp_path: Path) -> None:
    target = tmp_path / "labels.csv"
    target.write_text("old")
    with pytest.raises(Conflict, match="exists"):
        built.service.exporting.export(built.name, fmt="csv", out=target)
    assert target.read_text() == "old"
    built.service.exporting.export(built.name, fmt="csv", out=target, overwrite=True)
    assert target.read_text().startswith("path,sha256,label")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv"]


@pytest.mark.parametrize("previous", [False, True])
def test_a_crash_mid_export_leaves_the_target_as_it_was(built: Built, tmp_path: Path, previous: bool) -> None:
    out = tmp_path / "out"
    if previous:
        built.service.exporting.export(built.name, fmt="coco", out=out, link="copy")
    before = _tree(out) if previous else None
    with pytest.raises(Crash):
        built.service.exporting.export(built.name, fmt="imagefolder", out=out, overwrite=True,
                                       on_progress=_crash_at(20))
    assert (_tree(out) if out.exists() else None) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out"] if previous else [])


def test_ctrl_c_in_a_split_export_also_cleans_up(built: Built, tmp_path: Path) -> None:
    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        built.service.exporting.export(built.name, fmt="hf", out=tmp_path / "hf", split="0.8,0.2",
                                       on_progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_missing_image_file_fails_the_export_and_names_the_file(cifar_dir: Path, tmp_path: Path) -> None:
    service = _project(cifar_dir, tmp_path, classes=("cat",), folders=("cat",))
    _label_all(service, ("cat",))
    victim = sorted((tmp_path / "src").rglob("*.jpg"))[1]
    victim.unlink()
    with pytest.raises(ImageError, match=victim.name):
        service.exporting.export("s", fmt="imagefolder", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    report = service.exporting.export("s", fmt="csv", out=tmp_path / "refs.csv")  # references need no bytes
    assert report.counts["images"] == 4
    service.close()


def test_class_and_file_names_are_sanitised_and_unique(cifar_dir: Path, tmp_path: Path) -> None:
    from torchvision.datasets import ImageFolder

    classes = ("../evil", "a/b", "a_b", "CON", ".hidden", "A:B")  # A:B -> A_B: differs from a_b only by case
    service = _project(cifar_dir, tmp_path, classes=classes, folders=("cat", "dog"))
    clash = sorted((tmp_path / "src" / "cat").glob("*.jpg"))[0].name  # the first image's name, new bytes
    shutil.copy(sorted((cifar_dir / "bird").glob("*.jpg"))[0], tmp_path / "src" / "dog" / clash)
    service.importing.images("s", [tmp_path / "src" / "dog" / clash], progress=False)
    _label_all(service, classes)
    parent_before = sorted(p.name for p in tmp_path.iterdir())
    service.exporting.export("s", fmt="imagefolder", out=tmp_path / "out", link="symlink")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*parent_before, "out"])
    folders = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert folders == sorted(class_folders(classes).values()) and len(set(map(str.lower, folders))) == 6
    assert all(not f.startswith(".") and "/" not in f and f != "CON" for f in folders)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(manifest["class_folders"].values()) == sorted(classes)
    files = [p for p in (tmp_path / "out").rglob("*.jpg")]
    assert len(files) == 7 and all(p.is_symlink() for p in files)
    stem = clash.rsplit(".", 1)[0]
    assert {p.name for p in files if p.name.startswith(stem)} == {clash, f"{stem}-7.jpg"}
    assert all(p.resolve().is_relative_to(tmp_path / "src") for p in files)
    assert len(ImageFolder(str(tmp_path / "out"))) == 7
    service.close()


def test_hardlinks_share_the_bytes(cifar_dir: Path, tmp_path: Path) -> None:
    service = _project(cifar_dir, tmp_path, classes=("cat",), folders=("cat",))
    _label_all(service, ("cat",))
    service.exporting.export("s", fmt="imagefolder", out=tmp_path / "out", link="hardlink")
    files = sorted((tmp_path / "out").rglob("*.jpg"))
    assert len(files) == 4 and all(os.stat(p).st_nlink == 2 for p in files)
    service.close()


def test_safe_component_and_file_names() -> None:
    assert safe_component("..") == "_" and safe_component(".") == "_"
    assert safe_component("../../etc/passwd") == "_._.._etc_passwd"
    assert safe_component("a\x00b\nc") == "a_b_c" and safe_component("") == "_"
    assert safe_component("nul.txt") == "_nul.txt"
    assert image_file_name("photos.zip!dir/x.png", image_id=3, fmt=None) == "x.png"
    assert image_file_name("C:\\data\\cat\\1.JPG", image_id=3, fmt=None) == "1.JPG"
    assert image_file_name("/data/noext", image_id=3, fmt="jpg") == "noext.jpg"
    assert len(safe_component("é" * 200).encode()) <= 150


def test_options_are_validated_with_the_choices(built: Built, tmp_path: Path) -> None:
    cases = [({"fmt": "voc"}, "valid: imagefolder, yolo, csv, jsonl, coco, hf"),
             ({"include": "robots"}, "valid: all, human, model"),
             ({"split": "0.8,0.3"}, "sum to 1"), ({"split": "a,b"}, "not a list of numbers"),
             ({"min_confidence": 2.0}, "between 0 and 1"), ({"link": "teleport"}, "valid: copy, hardlink, symlink"),
             ({"fmt": "hf", "link": "copy"}, "embeds the image bytes"),
             ({"fmt": "imagefolder", "status": "unlabeled"}, "cannot hold unlabeled"),
             ({"fmt": "csv", "link": "copy", "out": tmp_path / "x.csv"}, "needs a folder")]
    for options, message in cases:
        args = {"fmt": "csv", "out": tmp_path / "o", **options}
        with pytest.raises(InvalidInput, match=message):
            built.service.exporting.export(built.name, **args)
    assert list(tmp_path.iterdir()) == []


def _project(cifar_dir: Path, tmp_path: Path, *, classes: tuple[str, ...], folders: tuple[str, ...]) -> Service:
    for name in folders:
        (tmp_path / "src" / name).mkdir(parents=True)
        for image in sorted((cifar_dir / name).glob("*.jpg"))[:3 if len(folders) > 1 else 4]:
            shutil.copy(image, tmp_path / "src" / name / image.name)
    service = Service(Settings(db=str(tmp_path / "s.sqlite"), media_dir=tmp_path / "media"))
    service.projects.create("s", classes=[ClassSpec(c) for c in classes])
    service.importing.images("s", [tmp_path / "src"], progress=False)
    return service


def _label_all(service: Service, classes: tuple[str, ...]) -> None:
    """Label image k with class k mod K, as import events (no model needed)."""

    with service.context.sessions.begin() as session:
        project = repo.project_by_name(session, name="s")
        ids = {c.name: c.id for c in repo.classes_of(session, project_id=project.id)}
        for k, image in enumerate(repo.images_of(session, project_id=project.id)):
            event = repo.append_event(session, project_id=project.id, image_id=image.id, action="import",
                                      source="import", label_after_id=ids[classes[k % len(classes)]])
            repo.set_current_label(session, event=event)
