"""Every format, read back by the library that consumes it, must match the store exactly:
the same images (unlabeled ones included where the format holds them), labels and provenance."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from tests.export.conftest import CLASSES, Built, Truth

PROVENANCE = ("source", "confidence", "annotator", "model_id", "model_version", "timestamp")


def _none(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) or value == "" else value


def _check_row(row: dict[str, Any], truth: Truth) -> None:
    assert _none(row["label"]) == truth.label
    assert _none(row["sha256"]) == truth.sha256 and row["path"] == truth.path
    for name in PROVENANCE:
        assert _none(row[name]) == getattr(truth, name), (name, row)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_read_by_pandas_matches_the_store(built: Built, tmp_path: Path) -> None:
    import pandas as pd

    report = built.service.exporting.export(built.name, fmt="csv", out=tmp_path / "labels.csv")
    frame = pd.read_csv(tmp_path / "labels.csv", dtype={"sha256": str, "annotator": str, "timestamp": str})
    assert len(frame) == len(built.truth) == report.counts["images"] == 40
    assert frame["label"].isna().sum() == 8 == report.counts["unlabeled"]
    for row in frame.to_dict("records"):
        _check_row(row, built.truth[row["image_id"]])
    assert list(frame.columns[:6]) == ["path", "sha256", "label", "source", "confidence", "model_id"]


def test_jsonl_read_by_pandas_matches_the_store(built: Built, tmp_path: Path) -> None:
    import pandas as pd

    calls: list[tuple[int, int]] = []
    report = built.service.exporting.export(built.name, fmt="jsonl", out=tmp_path / "out",
                                  on_progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (40, 40) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    frame = pd.read_json(tmp_path / "out" / "labels.jsonl", lines=True, dtype=False, convert_dates=False,
                         precise_float=True)
    assert len(frame) == 40 and report.files == 1
    for row in frame.to_dict("records"):
        _check_row(row, built.truth[row["image_id"]])
    sources = frame["source"].fillna("none").value_counts().to_dict()
    assert sources == {"import": 15, "model": 13, "human": 4, "none": 8}


def test_coco_loads_in_pycocotools_with_every_image(built: Built, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    built.service.exporting.export(built.name, fmt="coco", out=tmp_path / "coco", link="copy")
    coco = COCO(str(tmp_path / "coco" / "annotations.json"))
    assert sorted(coco.getImgIds()) == sorted(built.truth)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    for image in coco.loadImgs(coco.getImgIds()):
        truth = built.truth[image["id"]]
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        assert _sha(tmp_path / "coco" / image["file_name"]) == truth.sha256 == image["sha256"]
        if truth.label is None:
            assert annotations == []
            continue
        (annotation,) = annotations
        assert coco.loadCats(annotation["category_id"])[0]["name"] == truth.label
        assert {k: annotation["provenance"][k] for k in PROVENANCE} == {k: getattr(truth, k) for k in PROVENANCE}
    ship = coco.getImgIds(catIds=coco.getCatIds(catNms=["ship"]))
    assert ship == [i for i, t in built.truth.items() if t.label == "ship"]


def test_imagefolder_loads_in_torchvision_and_datasets(built: Built, tmp_path: Path) -> None:
    from torchvision.datasets import ImageFolder

    report = built.service.exporting.export(built.name, fmt="imagefolder", out=tmp_path / "folder")
    labeled = {t.sha256: t.label for t in built.truth.values() if t.label is not None}
    dataset = ImageFolder(str(tmp_path / "folder"))
    assert len(dataset) == len(labeled) == 32 and report.counts["skipped_unlabeled"] == 8
    for path, index in dataset.samples:
        assert labeled[_sha(Path(path))] == dataset.classes[index]
    image, _ = dataset[0]
    assert image.size == (32, 32)
    hf = _load_dataset("imagefolder", data_dir=str(tmp_path / "folder"), cache_dir=str(tmp_path / "cache"))
    assert hf["train"].features["label"].names == dataset.classes
    assert hf["train"].num_rows == 32


def test_imagefolder_split_is_stratified(built: Built, tmp_path: Path) -> None:
    from torchvision.datasets import ImageFolder

    report = built.service.exporting.export(built.name, fmt="imagefolder", out=tmp_path / "s", split="0.5,0.25,0.25",
                                  seed=3, leak_threshold=None)
    assert report.counts["per_split"] == _expected_splits(report.counts, (0.5, 0.25, 0.25), ("train", "val", "test"))
    per_class: dict[str, dict[str, int]] = {}
    for split in ("train", "val", "test"):
        dataset = ImageFolder(str(tmp_path / "s" / split))
        for _, index in dataset.samples:
            counts = per_class.setdefault(dataset.classes[index], {})
            counts[split] = counts.get(split, 0) + 1
    assert {name: sum(c.values()) for name, c in per_class.items()} == report.counts["per_class"]
    for name, counts in per_class.items():  # every class is cut by largest remainders on its own
        expected = _expected_splits({"per_class": {name: sum(counts.values())}}, (0.5, 0.25, 0.25),
                                    ("train", "val", "test"))
        assert counts == {k: v for k, v in expected.items() if v}, name


def test_yolo_classification_layout(built: Built, tmp_path: Path) -> None:
    from PIL import Image

    report = built.service.exporting.export(built.name, fmt="yolo", out=tmp_path / "yolo", leak_threshold=None)
    root = tmp_path / "yolo"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["train", "val"]
    train = sorted(p.name for p in (root / "train").iterdir())
    val = sorted(p.name for p in (root / "val").iterdir())
    assert set(val) <= set(train) and train == ["airplane", "automobile", "bird", "cat", "ship"]
    files = [p for p in root.glob("*/*/*") if p.is_file()]
    assert len(files) == 32 == sum(report.counts["per_split"].values())
    labeled = {t.sha256: t.label for t in built.truth.values() if t.label is not None}
    for path in files:
        assert labeled[_sha(path)] == path.parent.name
        with Image.open(path) as image:
            image.verify()
    assert report.counts["per_split"] == _expected_splits(report.counts, (0.8, 0.2), ("train", "val"))


def test_hf_parquet_has_a_classlabel_and_every_image(built: Built, tmp_path: Path) -> None:
    from datasets import ClassLabel

    built.service.exporting.export(built.name, fmt="hf", out=tmp_path / "hf")
    dataset = _load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))["train"]
    label = dataset.features["label"]
    assert isinstance(label, ClassLabel) and label.names == list(CLASSES)
    assert dataset.num_rows == 40
    for row in dataset:
        truth = built.truth[row["image_id"]]
        assert (label.int2str(row["label"]) if row["label"] >= 0 else None) == truth.label
        assert {k: row[k] for k in PROVENANCE} == {k: getattr(truth, k) for k in PROVENANCE}
        assert row["image"].size == (32, 32) and row["sha256"] == truth.sha256


def test_include_min_confidence_and_status_filters(built: Built, tmp_path: Path) -> None:
    service = built.service
    human = service.exporting.export(built.name, fmt="jsonl", out=tmp_path / "h.jsonl", include="human",
                                     status="labeled")
    assert human.counts["by_source"] == {"import": 15, "human": 4}
    model = service.exporting.export(built.name, fmt="jsonl", out=tmp_path / "m.jsonl", include="model")
    assert model.counts["by_source"] == {"model": 32, "unlabeled": 8}
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    confidences = sorted(r["confidence"] for r in rows if r["confidence"] is not None)
    cut = confidences[len(confidences) // 2]
    kept = service.exporting.export(built.name, fmt="jsonl", out=tmp_path / "c.jsonl", include="model",
                                    min_confidence=cut, status="labeled")
    assert kept.counts["images"] == sum(c >= cut for c in confidences) < 32
    none = service.exporting.export(built.name, fmt="csv", out=tmp_path / "u.csv", status="unlabeled")
    assert none.counts == {**none.counts, "images": 8, "labeled": 0}


def test_manifest_lists_a_checksum_for_every_file(built: Built, tmp_path: Path) -> None:
    built.service.exporting.export(built.name, fmt="imagefolder", out=tmp_path / "m", split="0.8,0.2",
                                   leak_threshold=None)
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    on_disk = {p.relative_to(tmp_path / "m").as_posix() for p in (tmp_path / "m").rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {"manifest.json"}
    assert all(_sha(tmp_path / "m" / rel) == digest for rel, digest in manifest["files"].items())
    assert manifest["generator"] == "clipmark" and manifest["counts"]["images"] == 32
    newest = max(os.stat(tmp_path / "m" / rel).st_mtime_ns for rel in manifest["files"])
    assert os.stat(tmp_path / "m" / "manifest.json").st_mtime_ns >= newest


def _load_dataset(*args: Any, **kwargs: Any) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    return datasets.load_dataset(*args, **kwargs)


def _expected_splits(counts: dict[str, Any], fractions: tuple[float, ...], names: tuple[str, ...]) -> dict[str, int]:
    """Largest remainders within each class, from the exported per-class counts."""
    import math

    totals = dict.fromkeys(names, 0)
    for count in counts["per_class"].values():
        raw = [f * count for f in fractions]
        base = [math.floor(r) for r in raw]
        for i in sorted(range(len(raw)), key=lambda i: -(raw[i] - base[i]))[: count - sum(base)]:
            base[i] += 1
        for name, n in zip(names, base, strict=True):
            totals[name] += n
    return totals
