"""The view handlers called as plain functions (no server): what each returns for the page."""

from __future__ import annotations

import html
import json
import re
import time
import zipfile
from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.service import Service
from core.usecases.demo import DEMO_CLASSES, DEMO_IMAGES, write_demo_images
from tests.webapp.conftest import tiny_settings, write_images
from webapp import app as webapp_app
from webapp.views import dashboard, export, grid, label, projects


@pytest.fixture()
def labeled_service(service: Service, tmp_path: Path) -> Service:
    write_images(tmp_path / "photos", 12)
    service.projects.create("p", classes=[c for c in DEMO_CLASSES[:3]])
    job = service.jobs.start_import("p", [tmp_path / "photos"])
    assert service.jobs.wait(job.job_id, timeout=120).status == "done"
    return service


def wait_for(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_label_view_shows_decides_prefetches_and_undoes(labeled_service: Service) -> None:
    service = labeled_service
    card, side, shown, note = label.ui_show(service, "p")
    assert shown is not None and "0 of 12 labeled" in side and note == ""
    thumb = card.split('src="gradio_api/file=')[1].split('"')[0]
    assert Path(thumb).is_file() and Path(thumb).parent.parent.name == str(label.DISPLAY_SIZE)
    ahead = [i.image_id for i in service.labeling.next_items("p", n=1 + label.PREFETCH)[1:]]
    files = service.browse.image_files(ahead)
    targets = [service.workspace.thumbs.target(sha256=files[i].sha256, file_path=files[i].file_path,
                                                  size=label.DISPLAY_SIZE) for i in ahead]
    assert wait_for(lambda: all(t.is_file() for t in targets))  # made in the background
    card, side, following, _ = label.ui_show(service, "p")
    assert card.count('class="cm-prefetch"') == label.PREFETCH
    card, side, after = label.ui_pick(service, "p", following, "cat")
    assert after != following and "1 of 12 labeled" in side and f"#{following} labeled cat" in side
    card, side, again = label.ui_undo(service, "p")
    assert again == following and "0 of 12 labeled" in side and "you undid its label" in side
    with pytest.raises(InvalidInput, match="image: there is no image on screen"):
        label.decide_and_next(service, "p", None, "accept", None, None)


def test_no_project_shows_nothing_and_actions_say_why(service: Service) -> None:
    card, side, shown, _ = label.ui_show(service, None)
    assert shown is None and "Nothing left to label" in card
    with pytest.raises(InvalidInput, match="choose a project"):
        label.ui_undo(service, None)


def test_grid_accepts_all_but_the_marked_and_fixes_those(labeled_service: Service) -> None:
    service = labeled_service
    name = next(c.name for c in DEMO_CLASSES[:3] if service.browse.grid("p", c.name).total >= 2)
    html, caption, ids, page = grid.ui_grid(service, "p", name, 1)
    assert page == 1 and len(ids) >= 2 and html.count("data-id=") == len(ids)
    *_, status = grid.ui_accept_rest(service, "p", name, 1, ids, str(ids[0]))
    assert f"Accepted {len(ids) - 1} images as {name}" in status
    other = next(c.name for c in DEMO_CLASSES[:3] if c.name != name)
    *_, status = grid.ui_fix_marked(service, "p", name, 1, other, str(ids[0]))
    assert f"Labeled 1 marked images {other}" in status
    assert service.labeling.progress("p").labeled == len(ids)


def test_delete_asks_first_with_the_count(labeled_service: Service) -> None:
    service = labeled_service
    shown = [i.image_id for i in service.labeling.next_items("p", n=2)]
    service.labeling.decide_many("p", image_ids=shown, action="correct", label="cat")
    text, row, pending = projects.ui_ask_delete(service, "p", "cat")
    assert "Delete cat? 2 images labeled cat will become unlabeled" in text and row["visible"] is True
    assert service.labeling.progress("p").labeled == 2  # nothing happened yet
    text, row, pending = projects.ui_confirm(service, "p", pending)
    assert "2 images are unlabeled again" in text and row["visible"] is False and pending is None
    assert list(service.projects.info("p").labels) == ["person", "coffee"]


def test_dashboard_and_export_views(labeled_service: Service) -> None:
    service = labeled_service
    service.labeling.decide("p", image_id=service.labeling.next_items("p", n=1)[0].image_id, action="accept")
    head, per_class, sources, curve, people, timeline, history, saved = dashboard.ui_dashboard(service, "p")
    assert "1 of 12 images labeled" in head and "remaining pseudo-labels" in head
    assert len(per_class) == 3 * len(dashboard.SOURCES) and per_class["images"].sum() == 12
    assert people.loc[0, "decisions"] == 1 and timeline["decisions"].sum() == 1
    path, report = export.export(service, "p", "imagefolder", "all", "all", 0.0, "", progress=lambda *a, **k: None)
    assert path.endswith(".zip") and report["counts"]["labeled"] == 12
    with zipfile.ZipFile(path) as archive:
        assert sum(name.endswith(".png") for name in archive.namelist()) == 12


def test_demo_project_is_ready_to_label(tmp_path: Path) -> None:
    written = write_demo_images(tmp_path / "demo")
    assert len(written) == len(DEMO_IMAGES) and all(p.stat().st_size > 0 for p in written)
    service = Service(tiny_settings(tmp_path))
    started = service.prepare_demo()
    assert started["created"] and service.jobs.wait(started["job"].job_id, timeout=120).status == "done"
    assert service.projects.status("demo").latest_prediction is not None
    assert service.prepare_demo() == {"project": "demo", "created": False, "job": None}
    assert webapp_app.ui_restore(service, "gone")["value"] == "demo"
    service.close()


def test_a_model_that_cannot_load_leaves_manual_labeling_working(tmp_path: Path) -> None:
    service = Service(tiny_settings(tmp_path, model="ViT-B-32", pretrained=str(tmp_path / "missing.bin")))
    write_images(tmp_path / "photos", 3)
    service.projects.create("m", classes=DEMO_CLASSES[:2])
    job = service.jobs.wait(service.jobs.start_import("m", [tmp_path / "photos"]).job_id, timeout=60)
    assert job.status == "done" and "checkpoint file not found" in str((job.result or {})["model_error"])
    assert "--pretrained /path/to/open_clip_pytorch_model.bin" in job.notes[0]  # says how to fix it
    card, side, shown, note = label.ui_show(service, "m")
    assert "Model not loaded" in note and "has no embedding yet" in side
    _, side, _ = label.ui_pick(service, "m", shown, "cat")
    assert "1 of 3 labeled" in side
    with pytest.raises(InvalidInput, match="has no proposal yet"):
        label.ui_accept(service, "m", service.labeling.next_items("m")[0].image_id)
    service.close()


def test_serve_launches_and_the_cli_knows_it(tmp_path: Path) -> None:
    from core.cli import build_parser
    from tests.webapp.conftest import free_port

    args = build_parser().parse_args(["serve", "--db", "x.sqlite", "--port", "8123", "--pretrained", "none", "--demo"])
    assert (args.port, args.host, args.demo, args.pretrained) == (8123, "127.0.0.1", True, "none")
    assert build_parser().parse_args(["demo"]).command == "demo"
    app, service = webapp_app.serve(tiny_settings(tmp_path), port=free_port(), prevent_thread_lock=True)
    try:
        assert app.local_url and service.jobs.list()[0].kind == "model check"
        assert service.jobs.wait(service.jobs.list()[0].job_id, timeout=60).result == {"model_error": None}
    finally:
        app.close()
        service.close()


def test_review_lists_suspects_and_settles_them(service: Service) -> None:
    from tests.helpers import project_from_vectors
    from tests.webapp.test_core_views import clustered
    from webapp.views import review

    def choices(page: str) -> list[dict[str, object]]:
        return [json.loads(html.unescape(c)) for c in re.findall(r'data-cm-choice="([^"]*)"', page)]

    emb, truth, centres = clustered(80, 3, seed=4)
    names = ["a", "b", "c"]
    ids = project_from_vectors(service, "r", embeddings=emb, class_names=names, head=centres)
    pairs = enumerate(zip(ids[:40], truth[:40], strict=True))
    given = {i: names[(t + 1) % 3] if k < 2 else names[t] for k, (i, t) in pairs}  # the first two flipped
    for name in names:
        service.labeling.decide_many("r", image_ids=[i for i in given if given[i] == name], action="correct",
                                     label=name)
    page = review.ui_suspects(service, "r", [])
    flipped = [c for c in choices(page) if c["image_ids"] in ([ids[0]], [ids[1]])]
    assert flipped and "the model says" in page
    fix = next(c for c in flipped if c["label"] != given[c["image_ids"][0]])  # "Change to <suggested>"
    page, reviewed, status = review.ui_settle(service, "r", [], json.dumps(fix))
    assert reviewed == fix["image_ids"] and fix not in choices(page)
    assert f"Labeled 1 image(s) {fix['label']}" in status
    with pytest.raises(InvalidInput, match="choice"):
        review.ui_settle(service, "r", [], "not json")


def test_restore_with_no_projects_changes_nothing(service: Service) -> None:
    """A late answer to the page's first load must not blank a project created meanwhile."""
    assert "value" not in webapp_app.ui_restore(service, None)
