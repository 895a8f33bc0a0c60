"""The region commands through core.cli.main: segment, instances, propose, proposals, sam-embed,
with the tiny random-weight Sam and the tiny open_clip model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.cli import main
from core.service import Service
from core.store.db import make_engine
from core.store.schema import RegionEvent
from tests.test_regions import CLASSES, SIZES, make_project, one_torch_thread, tiny_region_settings  # noqa: F401

SAM = ["--sam-model", "tiny", "--sam-checkpoint", "random"]
LOOSE = ["--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--min-confidence", "0",
         "--points-per-side", "8"]


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[int]]:
    """(--db/--project flags, image ids) of an embedded shapes project; the CLI shares its media dir."""
    settings = tiny_region_settings(tmp_path)
    service = Service(settings)
    ids = make_project(service, tmp_path, "p").ids
    service.close()
    monkeypatch.setenv("CLIPMARK_MEDIA", str(settings.media_dir))
    monkeypatch.setenv("CLIPMARK_USER", "tester")
    return ["--db", settings.db, "--project", "p"], ids


def stored_reasons(db: list[str]) -> list[str | None]:
    """The reason of each region event, oldest first."""
    engine = make_engine(db[1])
    try:
        with engine.connect() as conn:
            return list(conn.scalars(select(RegionEvent.reason).order_by(RegionEvent.id)))
    finally:
        engine.dispose()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(list(args)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 2
    return capsys.readouterr().err


def test_segment_shows_masks_and_save_keeps_one(cli, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    db, ids = cli
    image = str(ids[0])
    shown = run(capsys, "segment", *db, *SAM, "--image", image, "--point", "14,16")
    assert (shown["width"], shown["height"]) == SIZES[0] and len(shown["masks"]) == 3
    assert all("png" not in m and m["area"] >= 0 for m in shown["masks"]) and 0 <= shown["best"] < 3
    assert sorted(t["label"] for t in shown["labels"]) == sorted(CLASSES)
    assert shown["prompts"] == {"points": [[14.0, 16.0, 1]], "box": None}
    saved = run(capsys, "segment", *db, *SAM, "--image", image, "--point", "14,16", "--point", "50,30,0",
                "--box", "2,2,30,30", "--save", "--label", "square", "--user", "ann")
    assert saved["label"] == "square" and saved["source"] == "click" and saved["area"] > 0
    assert run(capsys, "instances", "list", *db, "--image", image) == [saved]
    assert run(capsys, "instances", "relabel", str(saved["id"]), "circle", *db, "--user", "ann",
               "--reason", "round, not square")["label"] == "circle"
    assert run(capsys, "instances", "delete", str(saved["id"]), *db, "--user", "ann")["deleted"] is True
    assert stored_reasons(db) == [None, "round, not square", None]
    assert main(["history", *db, "--action", "region-relabel"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("\tround, not square")  # history shows why
    assert run(capsys, "instances", "list", *db, "--image", image) == []
    assert run(capsys, "instances", "undo", *db, "--user", "ann")["undone"] == "delete"
    assert [i["label"] for i in run(capsys, "instances", "list", *db, "--image", image)] == ["circle"]
    assert "undo: you have no region action left" in fails(capsys, "instances", "undo", *db, "--user", "bob")


def test_bad_arguments_exit_2_naming_the_flag(cli, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    db, ids = cli
    segment = ["segment", *db, *SAM, "--image", str(ids[0])]
    assert "--point: 'a,b' is not comma-separated numbers" in fails(capsys, *segment, "--point", "a,b")
    assert "--point: '7' needs 2 or 3 numbers" in fails(capsys, *segment, "--point", "7")
    assert "--box: '1,2,3' needs 4 numbers" in fails(capsys, *segment, "--box", "1,2,3")
    assert "points: [500.0, 5.0, 1] is outside the 64x48 image" in fails(capsys, *segment, "--point", "500,5")
    assert "points: click the image" in fails(capsys, *segment)
    assert "image: no usable image #999" in fails(capsys, "segment", *db, *SAM, "--image", "999", "--point", "1,1")
    assert "sam-model: unknown segmenter 'vit_z'" in fails(capsys, *segment, "--point", "1,1", "--sam-model", "vit_z")
    assert "--image: give the image" in fails(capsys, "instances", "list", *db)
    assert "instance: `clipmark instances delete` needs an instance id" in fails(capsys, "instances", "delete", *db)
    assert "label: `clipmark instances relabel ID LABEL`" in fails(capsys, "instances", "relabel", "1", *db)
    too_long = ["--reason", "r" * 501]
    assert "reason: 501 characters; at most 500" in fails(capsys, "instances", "delete", "1", *db, *too_long)
    assert "proposal: `clipmark proposals accept` needs a proposal id" in fails(capsys, "proposals", "accept", *db)
    assert "--pred-iou-thresh: 2.0 is not between 0 and 1" in fails(capsys, "propose", *db, *SAM,
                                                                     "--pred-iou-thresh", "2")


def test_propose_then_work_the_proposal_queue(cli, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    db, ids = cli
    assert run(capsys, "propose", *db, *SAM, "--points-per-side", "8")["proposed"] == 0  # SAM's own filters
    summary = run(capsys, "propose", *db, *SAM, *LOOSE, "--image", str(ids[0]), "--image", str(ids[1]))
    assert summary["images"] == 2 and summary["proposed"] >= 2 and summary["errors"] == []
    queue = run(capsys, "proposals", "list", *db, "--limit", "100")
    assert len(queue) == summary["proposed"] and all("rle" not in q and len(q["top"]) == 3 for q in queue)
    assert [q["uncertainty"] for q in queue] == sorted((q["uncertainty"] for q in queue), reverse=True)
    assert {q["image_id"] for q in queue} <= set(ids[:2])
    first, second = queue[0]["id"], queue[1]["id"]
    accepted = run(capsys, "proposals", "accept", str(first), *db, "--label", "circle", "--user", "ann")
    assert accepted["status"] == "accepted" and accepted["instance"]["source"] == "proposal"
    assert accepted["instance"]["label"] == "circle"
    assert run(capsys, "proposals", "reject", str(second), *db, "--user", "ann")["status"] == "rejected"
    assert f"proposal: #{first} was already accepted" in fails(capsys, "proposals", "reject", str(first), *db)
    assert [q["id"] for q in run(capsys, "proposals", *db, "--limit", "100")] == [q["id"] for q in queue[2:]]
    again = run(capsys, "propose", *db, *SAM, *LOOSE, "--image", str(ids[0]), "--image", str(ids[1]))
    assert again["proposed"] == 0 and again["duplicates"] >= summary["proposed"]


def test_sam_embed_computes_then_finds_the_cache(cli, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    db, ids = cli
    first = run(capsys, "sam-embed", *db, *SAM, "--image", str(ids[0]))
    assert (first["images"], first["computed"], first["cached"], first["errors"]) == (1, 1, 0, [])
    second = run(capsys, "sam-embed", *db, *SAM)
    assert (second["images"], second["computed"], second["cached"]) == (3, 2, 1)
    assert second["model_id"] == "tiny@random:0"


def test_history_lists_region_actions_with_image_decisions(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Region actions are part of the project's history (CLI and service), filterable by action."""
    from core.config import Settings
    from core.service import Service
    from core.store.repo import ClassSpec
    from tests.webapp.conftest import tiny_settings, write_images

    settings: Settings = tiny_settings(tmp_path)
    service = Service(settings)
    try:
        service.projects.create("h", classes=[ClassSpec("cat"), ClassSpec("dog")])
        service.importing.images("h", write_images(tmp_path / "imgs", 2), progress=False)
        service.labeling.decide("h", image_id=1, action="correct", label="cat")
        saved = service.regions.add_instance("h", 1, {"points": [[10, 10, 1]]}, choice=0, label="dog")
        service.regions.relabel_instance("h", saved.id, "cat")
        service.regions.undo("h")
        rows = service.team.history("h")
        assert [r.action for r in rows] == ["region-undo", "region-relabel", "region-add", "correct"]
        assert rows[0].undoes == rows[1].event_id and rows[1].before == "dog" and rows[1].after == "cat"
        assert [r.action for r in service.team.history("h", action="region-add")] == ["region-add"]
        assert [r.action for r in service.team.history("h", action="correct")] == ["correct"]
    finally:
        service.close()
    assert main(["history", "--db", settings.db, "--project", "h", "--action", "region-relabel"]) == 0
    assert "region-relabel" in capsys.readouterr().out
