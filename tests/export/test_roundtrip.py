"""Re-importing an export into a new project reproduces its labels; labels made elsewhere
(foreign CSV, COCO without hashes) come in by path; unknown classes are reported or added."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from core.config import Settings
from core.errors import InvalidInput
from core.service import Service
from core.store.repo import ClassSpec
from tests.export.conftest import CLASSES, Built


def _fresh(built: Built, tmp_path: Path, classes: tuple[str, ...] = CLASSES) -> Service:
    service = Service(Settings(db=str(tmp_path / "new.sqlite"), media_dir=tmp_path / "media"))
    service.projects.create("q", classes=[ClassSpec(c) for c in classes])
    service.importing.images("q", [built.root], progress=False)
    return service


def _labels_by_sha(truths: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {t.sha256: t.label for t in truths.values() if t.label is not None}


def _labels_of(service: Service, project: str) -> dict[str, tuple[str | None, str | None]]:
    from sqlalchemy import select

    from core.store.schema import CurrentLabel, Image, LabelClass

    with service.context.sessions.begin() as session:
        rows = session.execute(select(Image.sha256, LabelClass.name, CurrentLabel.source)
                               .join(CurrentLabel, CurrentLabel.image_id == Image.id)
                               .join(LabelClass, LabelClass.id == CurrentLabel.label_id))
        return {sha: (name, source) for sha, name, source in rows}


@pytest.mark.parametrize("fmt, out", [("csv", "labels.csv"), ("jsonl", "x"), ("coco", "coco"),
                                      ("imagefolder", "folder")])
def test_reimport_of_every_export_reproduces_the_labels(built: Built, tmp_path: Path, fmt: str, out: str) -> None:
    built.service.exporting.export(built.name, fmt=fmt, out=tmp_path / out, include="all")
    service = _fresh(built, tmp_path)
    report = service.importing.labels("q", tmp_path / out, fmt=fmt, include="all", annotator="porter")
    expected = _labels_by_sha(built.truth)
    got = _labels_of(service, "q")
    assert {sha: label for sha, (label, _) in got.items()} == expected
    assert {source for _, source in got.values()} == {"import"}
    assert report["labeled"] == len(expected) == 32 and report["unmatched"] == 0
    again = service.importing.labels("q", tmp_path / out, fmt=fmt, include="all")
    assert (again["labeled"], again["unchanged"]) == (0, 32)
    service.close()


def test_pseudo_labels_stay_out_unless_asked(built: Built, tmp_path: Path) -> None:
    built.service.exporting.export(built.name, fmt="jsonl", out=tmp_path / "all.jsonl")
    service = _fresh(built, tmp_path)
    report = service.importing.labels("q", tmp_path / "all.jsonl", fmt="jsonl")
    human = {t.sha256: t.label for t in built.truth.values() if t.source in ("human", "import")}
    assert report["skipped_model"] == 13 and report["labeled"] == len(human) == 19
    assert {sha: label for sha, (label, _) in _labels_of(service, "q").items()} == human
    service.close()


def test_foreign_csv_matches_by_relative_path_and_reports_unknown_classes(built: Built, tmp_path: Path) -> None:
    rows = [(p.relative_to(built.root / "unlabeled").as_posix(), p.parent.name)
            for p in sorted((built.root / "unlabeled").rglob("*.jpg"))]
    rows += [("late/deer/" + p.name, "deer") for p in sorted((built.root / "late" / "deer").glob("*.jpg"))]
    rows.append(("nowhere/ghost.jpg", "cat"))
    source = tmp_path / "foreign.csv"
    with source.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)  # headerless path,label
    service = _fresh(built, tmp_path)
    report = service.importing.labels("q", source, fmt="csv")
    assert report["labeled"] == 16 and report["unmatched"] == 1
    assert report["unknown_classes"] == {"deer": 8}
    added = service.importing.labels("q", source, fmt="csv", add_classes=True)
    assert added["labeled"] == 8 and added["added_classes"] == ["deer"]
    labels = _labels_of(service, "q")
    assert sorted(label for label, _ in labels.values()).count("deer") == 8
    service.close()


def test_foreign_coco_without_hashes_matches_by_file_name(built: Built, tmp_path: Path) -> None:
    images = sorted((built.root / "labeled").rglob("*.jpg"))
    coco = {"categories": [{"id": 7, "name": "airplane"}, {"id": 9, "name": "automobile"}],
            "images": [{"id": k, "file_name": p.name, "width": 32, "height": 32} for k, p in enumerate(images)],
            "annotations": [{"id": k, "image_id": k, "category_id": 7 if p.parent.name == "airplane" else 9,
                             "bbox": [0, 0, 8, 8], "area": 64, "iscrowd": 0} for k, p in enumerate(images)]}
    coco["annotations"].append({"id": 99, "image_id": 0, "category_id": 9, "bbox": [1, 1, 2, 2]})
    (tmp_path / "foreign.json").write_text(json.dumps(coco))
    service = _fresh(built, tmp_path)
    report = service.importing.labels("q", tmp_path / "foreign.json", fmt="coco")
    assert report["labeled"] == 15 and len(report["problems"]) == 1
    assert "several categories" in report["problems"][0]["reason"]
    labels = [label for label, _ in _labels_of(service, "q").values()]
    assert (labels.count("airplane"), labels.count("automobile")) == (7, 8)
    service.close()


def test_replace_overwrites_existing_labels_only_when_asked(built: Built, tmp_path: Path) -> None:
    service = _fresh(built, tmp_path)
    source = tmp_path / "all_cat.csv"
    source.write_text("path,label\n" + "".join(f"{p.name},cat\n" for p in (built.root / "labeled").rglob("*.jpg")))
    service.importing.labels("q", built.root / "labeled", fmt="imagefolder")
    kept = service.importing.labels("q", source, fmt="csv")
    assert kept["kept_existing"] == 16 and kept["labeled"] == 0
    replaced = service.importing.labels("q", source, fmt="csv", replace=True)
    assert replaced["labeled"] == 16
    assert {label for label, _ in _labels_of(service, "q").values()} == {"cat"}
    service.close()


def test_bad_format_and_missing_source_name_the_problem(built: Built, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="valid: imagefolder, csv, coco, jsonl"):
        built.service.importing.labels(built.name, tmp_path, fmt="voc")
    with pytest.raises(InvalidInput, match="no such file or folder"):
        built.service.importing.labels(built.name, tmp_path / "absent.csv", fmt="csv")
