"""The region mode's handlers called directly (tiny Sam, tiny open_clip): every payload action,
the nonce echo, the errors that name the field, and the proposal review order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.service import Service
from core.store.repo import ClassSpec
from core.usecases.results import jsonable
from tests.webapp.conftest import tiny_settings, write_images
from webapp.views import regions as view

LOOSE = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "min_confidence": 0.0}


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tiny_settings(tmp_path))
    svc.projects.create("p", classes=[ClassSpec("cat"), ClassSpec("dog")])
    svc.importing.images("p", write_images(tmp_path / "imgs", 3), progress=False)
    svc.embedding.embed("p", progress=False)
    svc.embedding.predict("p")
    yield svc
    svc.close()


def act(service: Service, image: int | None, **payload: object) -> tuple:
    return view.ui_region(service, "p", image, json.dumps(payload))


def test_open_click_labels_accept(service: Service) -> None:
    card, side, image = view.ui_region_enter(service, "p", None)
    assert image == 1 and 'data-image-id="1"' in card and "No instances on this image yet" in side
    card, side, image = act(service, 1, action="click", points=[[20, 18, 1]], nonce=7)
    assert 'data-nonce="7"' in card and card.count('class="cm-rlayer cm-cand') == 3
    assert card.count("cm-cand cm-on") == 1 and 'data-labels="pending"' in card and "cm-dot cm-pos" in card
    skipped, side, same = act(service, 1, action="labels", points=[[20, 18, 1]], choice=0)
    assert "CLIP proposes for this mask" in side and same is not None and not isinstance(skipped, str)
    card, side, _ = act(service, 1, action="accept", points=[[20, 18, 1]], choice=0, label="dog")
    assert "Saved #1 dog" in side and "cm-rinst" in card and "cm-cand" not in card


def test_errors_name_the_field(service: Service) -> None:
    with pytest.raises(InvalidInput, match="action"):
        act(service, 1, action="explode")
    with pytest.raises(InvalidInput, match="image"):
        act(service, None, action="click", points=[[1, 1, 1]])
    with pytest.raises(InvalidInput, match="proposal"):
        act(service, 1, action="reject")
    with pytest.raises(InvalidInput, match="instance"):
        act(service, 1, action="delete")
    with pytest.raises(InvalidInput, match="payload"):
        view.ui_region(service, "p", 1, "{not json")


def test_select_relabel_delete_undo_and_stepping(service: Service) -> None:
    saved = service.regions.add_instance("p", 2, {"points": [[10, 10, 1]]}, choice=0, label="cat")
    _, side, _ = act(service, 2, action="relabel", selected=saved.id, label="dog")
    assert f"#{saved.id} is now dog" in side
    _, side, _ = act(service, 2, action="delete", selected=saved.id)
    assert "Deleted" in side and "No instances on this image yet" in side
    _, side, image = act(service, 3, action="undo")
    assert image == 2 and "Undid your delete" in side
    assert act(service, 3, action="next")[2] == 1  # wraps around
    assert act(service, 1, action="prev")[2] == 3


def test_proposals_are_reviewed_least_certain_first_across_images(service: Service) -> None:
    service.regions.propose("p", image_ids=[2, 3], **LOOSE)
    expected = service.regions.next_proposals("p", limit=1)[0]
    card, side, image = act(service, 1, action="proposal")  # image 1 has none: the project's first
    assert image == expected.image_id and f'data-proposal="{expected.id}"' in card and "cm-prop" in card
    card, side, image = act(service, image, action="reject", proposal=expected.id)
    assert f"Rejected proposal #{expected.id}" in side
    assert f'data-proposal="{expected.id}"' not in card


def test_background_jobs_prepare_and_propose_every_image(service: Service) -> None:
    import re

    text = view.ui_prepare_all(service, "p")
    job = jsonable(service.jobs.wait(re.search(r"job (\w+)", text).group(1), timeout=120))
    assert job["status"] == "done" and job["result"]["images"] == 3 and job["result"]["computed"] == 3
    assert all(service.regions.ready(service.regions.image("p", i)) for i in (1, 2, 3))
    text = view.ui_propose_all(service, "p")
    job = jsonable(service.jobs.wait(re.search(r"job (\w+)", text).group(1), timeout=120))
    assert job["status"] == "done" and job["kind"] == "propose" and job["result"]["images"] == 3
    assert job["done"] == job["total"] == 3


def test_instance_overlay_is_drawn_once_per_set_of_instances(service: Service) -> None:
    from core.segment.view import instances_png
    from core.store.schema import Instance

    def rles(ids: list[int]) -> list[dict]:
        with service.context.sessions.begin() as session:
            return [session.get(Instance, i).rle for i in ids]

    regions = service.regions
    first = regions.add_instance("p", 1, {"points": [[10, 10, 1]]}, choice=0, label="cat")
    png = regions.view("p", 1).overlay
    assert png == instances_png(rles([first.id])) and regions.view("p", 1).overlay is png
    second = regions.add_instance("p", 1, {"points": [[30, 20, 1]]}, choice=0, label="dog")
    assert regions.view("p", 1).overlay == instances_png(rles([first.id, second.id]))
    regions.delete_instance("p", first.id)
    regions.delete_instance("p", second.id)
    assert regions.view("p", 1).overlay is None
