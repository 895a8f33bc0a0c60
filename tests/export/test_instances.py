"""Region instances in the exports, read back by the libraries that consume them: pycocotools (COCO,
annToMask, COCOeval) and the YOLO label files (parsed, polygons rasterised with PIL).

The instances are made from known masks (rectangles, an L-shape, a blob, a mask touching the border,
a two-part mask, a single pixel, a deleted one); the expected values come from those masks and from
the test's own query of the instances table, not from the code that writes the exports."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw
from sqlalchemy import event, select

from core.cli import main
from core.config import Settings
from core.errors import InvalidInput
from core.service import Service
from core.store import regions, repo
from core.store.repo import ClassSpec, get_or_create_user
from core.store.schema import Image, Instance, LabelClass

CLASSES = ("cat", "dog", "box", "unused")
SIZES = {"rects.png": (64, 48), "lshape.png": (50, 40), "blob.png": (60, 60), "border.png": (40, 30),
         "labeled.png": (32, 32), "both.png": (48, 32), "nothing.png": (32, 32)}  # name: (W, H)
IMAGE_LABELS = {"labeled.png": "cat", "both.png": "dog"}


def _box(size: tuple[int, int], *parts: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), dtype=bool)
    for r0, r1, c0, c1 in parts:
        mask[r0:r1, c0:c1] = True
    return mask


def _blob(size: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[: size[1], : size[0]]
    return ((rows - 30) / 14) ** 2 + ((cols - 27) / 18) ** 2 + 0.3 * np.sin(cols / 3.0) <= 1


MASKS = [  # image, class, mask, deleted
    ("rects.png", "cat", _box(SIZES["rects.png"], (5, 20, 10, 40)), False),
    ("rects.png", "dog", _box(SIZES["rects.png"], (25, 45, 30, 60)), False),
    ("lshape.png", "box", _box(SIZES["lshape.png"], (5, 35, 5, 15), (25, 35, 15, 40)), False),
    ("blob.png", "cat", _blob(SIZES["blob.png"]), False),
    ("blob.png", "dog", _box(SIZES["blob.png"], (0, 10, 0, 10)), True),
    ("blob.png", "dog", _box(SIZES["blob.png"], (52, 53, 55, 56)), False),              # one pixel
    ("border.png", "dog", _box(SIZES["border.png"], (0, 12, 25, 40)), False),          # top and right edge
    ("border.png", "box", _box(SIZES["border.png"], (15, 27, 2, 14), (24, 27, 30, 33)), False),  # two parts
    ("both.png", "dog", _box(SIZES["both.png"], (8, 24, 12, 36)), False),
]


@dataclass
class Regions:
    service: Service
    db: str
    name: str
    ids: dict[str, int]               # image file name -> image id
    masks: dict[int, np.ndarray]      # instance id -> the mask it was made from
    deleted: int
    speck: int
    two_part: int


def coco_rle(mask: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Regions:
    from pycocotools import mask as mask_utils

    base = tmp_path_factory.mktemp("regions")
    rng = np.random.default_rng(0)
    (base / "img").mkdir()
    for name, (w, h) in SIZES.items():
        PILImage.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(base / "img" / name)
    service = Service(Settings(db=str(base / "r.sqlite"), media_dir=base / "media"))
    service.projects.create("r", classes=[ClassSpec(c) for c in CLASSES])
    service.importing.images("r", [base / "img"], progress=False)
    with service.context.sessions.begin() as session:
        ids = {Path(i.original_path).name: i.id for i in session.scalars(select(Image))}
    for name, label in IMAGE_LABELS.items():
        service.labeling.decide("r", image_id=ids[name], action="correct", label=label, annotator="alice")
    masks: dict[int, np.ndarray] = {}
    with service.context.sessions.begin() as session:
        project_id = repo.project_by_name(session, name="r").id
        label_ids = dict(session.execute(select(LabelClass.name, LabelClass.id)).all())
        alice = get_or_create_user(session, name="alice").id
        for k, (name, label, mask, deleted) in enumerate(MASKS):
            rle = coco_rle(mask)
            row = regions.add_instance(
                session, project_id=project_id, image_id=ids[name], label_id=label_ids[label], rle=rle,
                bbox=[float(v) for v in mask_utils.toBbox(rle)], area=int(mask.sum()), score=0.9 - k / 100,
                label_confidence=0.5 + k / 100, source="click" if k % 2 else "proposal", prompts=None,
                segmenter_id="tiny@random:0", annotator_id=alice if k % 2 else None, deleted=deleted)
            masks[row.id] = mask
    order = list(masks)
    return Regions(service, str(base / "r.sqlite"), "r", ids, masks, deleted=order[4], speck=order[5],
                   two_part=order[7])


def stored(project: Regions) -> dict[int, dict[str, Any]]:
    """The live instances as the store has them (the test's own query)."""
    with project.service.context.sessions.begin() as session:
        query = (select(Instance, LabelClass.name).join(LabelClass, LabelClass.id == Instance.label_id)
                 .where(Instance.deleted.is_(False)).order_by(Instance.image_id, Instance.id))
        return {i.id: {"image_id": i.image_id, "label": name, "rle": i.rle, "bbox": i.bbox, "area": i.area}
                for i, name in session.execute(query)}


def test_coco_rle_is_the_stored_mask(project: Regions, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    report = project.service.exporting.export(project.name, fmt="coco", out=tmp_path / "c.json")
    coco = COCO(str(tmp_path / "c.json"))
    truth = stored(project)
    assert sorted(coco.getImgIds()) == sorted(project.ids.values())
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    annotations = coco.loadAnns(coco.getAnnIds(iscrowd=None))
    assert all("segmentation" in a and "bbox" in a for a in annotations)  # only regions: detection tools read it
    by_instance = {a["provenance"]["instance_id"]: a for a in annotations}
    assert set(by_instance) == set(truth) and project.deleted not in by_instance and len(truth) == 8
    image_level = sorted((i["id"], i["label"]) for i in coco.loadImgs(coco.getImgIds()) if "label" in i)
    assert image_level == sorted((project.ids[n], label) for n, label in IMAGE_LABELS.items())
    for instance_id, ann in by_instance.items():
        row, mask = truth[instance_id], project.masks[instance_id]
        assert ann["image_id"] == row["image_id"] and coco.cats[ann["category_id"]]["name"] == row["label"]
        assert ann["bbox"] == row["bbox"] and ann["area"] == row["area"] == mask.sum() and ann["iscrowd"] == 0
        assert ann["segmentation"] == row["rle"] == coco_rle(mask)
        assert np.array_equal(coco.annToMask(ann).astype(bool), mask)
        assert set(ann["provenance"]) == {"instance_id", "source", "annotator", "segmenter_id", "label_confidence",
                                          "timestamp"}
    assert len(coco.getAnnIds(imgIds=[project.ids["rects.png"]], iscrowd=None)) == 2
    assert len(coco.getAnnIds(imgIds=[project.ids["both.png"]], iscrowd=None)) == 1  # its label is on the image
    counts = report.counts
    assert [counts[k] for k in ("instances", "images_with_instances", "labeled", "unlabeled")] == [8, 5, 6, 1]
    assert counts["instances_per_class"] == {"cat": 2, "dog": 4, "box": 2}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_coco_polygons_rasterise_to_the_mask(project: Regions, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    project.service.exporting.export(project.name, fmt="coco", out=tmp_path / "p.json", masks="polygons")
    coco = COCO(str(tmp_path / "p.json"))
    for annotation in coco.loadAnns(coco.getAnnIds(iscrowd=None)):
        if "segmentation" not in annotation:
            continue
        instance_id = annotation["provenance"]["instance_id"]
        mask, segmentation = project.masks[instance_id], annotation["segmentation"]
        if instance_id == project.speck:  # one pixel yields no polygon: the RLE instead
            assert segmentation == coco_rle(mask)
            continue
        assert isinstance(segmentation, list) and all(len(p) >= 6 and len(p) % 2 == 0 for p in segmentation)
        assert len(segmentation) == (2 if instance_id == project.two_part else 1)
        assert _iou(coco.annToMask(annotation).astype(bool), mask) > 0.85, instance_id


def _evaluate(gt_path: Path, iou_type: str) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(gt_path))
    detections = gt.loadRes(copy.deepcopy([a for a in gt.dataset["annotations"] if "segmentation" in a]))
    evaluation = COCOeval(gt, detections, iou_type)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return float(evaluation.stats[0])


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_cocoeval_of_the_export_against_itself_is_perfect(project: Regions, tmp_path: Path, iou_type: str) -> None:
    # the file as written, image labels included (they sit on the image entries), is the ground truth
    project.service.exporting.export(project.name, fmt="coco", out=tmp_path / "all.json")
    assert _evaluate(tmp_path / "all.json", iou_type) == 1.0


def test_coco_status_counts_images_with_instances_as_labeled(project: Regions, tmp_path: Path) -> None:
    labeled = project.service.exporting.export(project.name, fmt="coco", out=tmp_path / "l.json", status="labeled")
    unlabeled = project.service.exporting.export(project.name, fmt="coco", out=tmp_path / "u.json", status="unlabeled")
    assert labeled.counts["images"] == 6 and unlabeled.counts["images"] == 1
    (image,) = json.loads((tmp_path / "u.json").read_text())["images"]
    assert image["id"] == project.ids["nothing.png"]


def _yolo(project: Regions, tmp_path: Path, fmt: str) -> tuple[dict[str, Any], dict[str, Path], dict[str, Path]]:
    import yaml

    out = tmp_path / fmt
    report = project.service.exporting.export(project.name, fmt=fmt, out=out, leak_threshold=None)
    data = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))
    assert data["names"] == dict(enumerate(CLASSES)) and data["nc"] == len(CLASSES)
    assert data["path"] == str(out) and (data["train"], data["val"]) == ("images/train", "images/val")
    labels = {p.stem: p for p in out.glob("labels/*/*.txt")}
    images = {p.stem: p for p in out.glob("images/*/*")}
    assert set(labels) == set(images) == {Path(n).stem for n in SIZES if n != "nothing.png"}
    assert all(labels[s].parent.name == images[s].parent.name for s in labels)  # the same split
    assert report.counts["skipped_unlabeled"] == 1 and sum(report.counts["per_split"].values()) == 6
    assert labels["labeled"].read_text() == ""  # looked at, no instance: a background image
    return report, labels, images


def _lines(path: Path) -> list[tuple[int, list[float]]]:
    return [(int(f[0]), [float(v) for v in f[1:]]) for f in (line.split() for line in path.read_text().splitlines())]


def _of_image(truth: dict[int, dict[str, Any]], image_id: int) -> list[tuple[int, dict[str, Any]]]:
    return [(k, row) for k, row in truth.items() if row["image_id"] == image_id]


def test_yolo_detect_boxes_are_the_normalised_bboxes(project: Regions, tmp_path: Path) -> None:
    _, labels, images = _yolo(project, tmp_path, "yolo-detect")
    truth = stored(project)
    with project.service.context.sessions.begin() as session:
        shas = dict(session.execute(select(Image.id, Image.sha256)).all())
    for name, image_id in project.ids.items():
        if name == "nothing.png":
            continue
        stem = Path(name).stem
        assert hashlib.sha256(images[stem].read_bytes()).hexdigest() == shas[image_id]
        with PILImage.open(images[stem]) as image:
            width, height = image.size
        assert (width, height) == SIZES[name]
        expected = _of_image(truth, image_id)
        lines = _lines(labels[stem])
        assert len(lines) == len(expected)
        for (cls, values), (_, row) in zip(lines, expected, strict=True):
            x, y, w, h = row["bbox"]
            assert CLASSES[cls] == row["label"]
            assert np.allclose(values, [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height],
                               atol=1e-6, rtol=0)


def _rasterise(values: list[float], width: int, height: int) -> np.ndarray:
    canvas = PILImage.new("L", (width, height), 0)
    points = [(values[k] * width - 0.5, values[k + 1] * height - 0.5) for k in range(0, len(values), 2)]
    ImageDraw.Draw(canvas).polygon(points, fill=1)  # COCO corners -> PIL pixel centres
    return np.asarray(canvas, dtype=bool)


def test_yolo_segment_polygons_rasterise_to_the_mask(project: Regions, tmp_path: Path) -> None:
    from scipy import ndimage

    _, labels, _ = _yolo(project, tmp_path, "yolo-segment")
    truth = stored(project)
    for name, image_id in project.ids.items():
        if name == "nothing.png":
            continue
        width, height = SIZES[name]
        lines = _lines(labels[Path(name).stem])
        assert [CLASSES[c] for c, _ in lines] == [row["label"] for _, row in _of_image(truth, image_id)]
        for (_, values), (instance_id, row) in zip(lines, _of_image(truth, image_id), strict=True):
            mask = project.masks[instance_id]
            if instance_id == project.speck:  # no polygon: the box's corners
                x, y, w, h = row["bbox"]
                assert np.allclose(values, [x / width, y / height, (x + w) / width, y / height, (x + w) / width,
                                            (y + h) / height, x / width, (y + h) / height], atol=1e-6)
                continue
            assert len(values) >= 6 and all(0.0 <= v <= 1.0 for v in values)
            drawn = _rasterise(values, width, height)
            if instance_id == project.two_part:  # one polygon: the larger part, not the other
                parts, _ = ndimage.label(mask)
                sizes = np.bincount(parts.ravel())[1:]
                mask = parts == 1 + int(sizes.argmax())
                assert not (drawn & (parts == 1 + int(sizes.argmin()))).any()
            assert _iou(drawn, mask) > 0.85, (name, instance_id)


def test_masks_option_is_validated_and_yolo_holds_no_unlabeled(project: Regions, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="--masks: unknown 'bitmap' \\(valid: rle, polygons\\)"):
        project.service.exporting.export(project.name, fmt="coco", out=tmp_path / "x.json", masks="bitmap")
    with pytest.raises(InvalidInput, match="--status unlabeled"):
        project.service.exporting.export(project.name, fmt="yolo-detect", out=tmp_path / "y", status="unlabeled")


def test_cli_exports_polygons(project: Regions, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.json"
    argv = ["export", "--db", project.db, "--project", project.name, "--format", "coco", "--masks", "polygons",
            "--out", str(out)]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["instances"] == 8
    segmentations = [a["segmentation"] for a in json.loads(out.read_text())["annotations"] if "segmentation" in a]
    assert sum(isinstance(s, list) for s in segmentations) == 7  # the one pixel stays RLE


def test_records_fetch_instances_in_batches(project: Regions, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.export.records as records

    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731  (conn, cursor, statement, ...)
    monkeypatch.setattr(records, "INSTANCE_BATCH", 3)
    event.listen(project.service.context.engine, "before_cursor_execute", listener)
    try:
        with project.service.context.sessions.begin() as session:
            project_id = repo.project_by_name(session, name=project.name).id
            found = {r.image_id: [i["id"] for i in r.instances]
                     for r in records.iter_records(session, project_id=project_id)}
    finally:
        event.remove(project.service.context.engine, "before_cursor_execute", listener)
    assert len(found) == 7
    expected: dict[int, list[int]] = {image_id: [] for image_id in project.ids.values()}
    for instance_id, row in stored(project).items():
        expected[row["image_id"]].append(instance_id)
    assert found == expected
    batched = [s for s in statements if "FROM instances JOIN label_classes" in s]
    assert len(batched) == 3  # ceil(7 / 3) queries, not one per image


def test_a_project_without_instances_exports_coco_as_before(built: Any, tmp_path: Path) -> None:
    report = built.service.exporting.export(built.name, fmt="coco", out=tmp_path / "c.json")
    annotations = json.loads((tmp_path / "c.json").read_text())["annotations"]
    assert len(annotations) == 32 and report.counts["instances"] == 0
    assert all(set(a) == {"id", "image_id", "category_id", "iscrowd", "provenance"} for a in annotations)
    assert [a["id"] for a in annotations] == list(range(1, 33))


def test_import_labels_reads_image_labels_not_regions_from_a_coco_export(project: Regions, tmp_path: Path) -> None:
    service = project.service
    service.exporting.export(project.name, fmt="coco", out=tmp_path / "c.json")
    service.projects.create("again", classes=[ClassSpec(c) for c in CLASSES])
    with service.context.sessions.begin() as session:
        folder = Path(session.scalar(select(Image.original_path).where(Image.id == project.ids["rects.png"]))).parent
    service.importing.images("again", [folder], progress=False)
    report = service.importing.labels("again", tmp_path / "c.json", fmt="coco")
    assert report["labeled"] == 2 and report["problems"] == []
