"""The region endpoints through gradio_client against the launched app (tiny Sam, tiny open_clip):
segment, save an instance, list, relabel, delete, undo, propose and decide proposals. Masks come
back as COCO RLE (decoded here with pycocotools), never as full-size images."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from sqlalchemy import select

from core.service import Service
from core.store.repo import ClassSpec
from core.store.schema import RegionEvent
from tests.webapp.conftest import launch, tiny_settings, write_images
from webapp.app import build_app

mask_api = pytest.importorskip("pycocotools.mask")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Service]]:
    tmp = tmp_path_factory.mktemp("regions-api")
    service = Service(tiny_settings(tmp))
    service.projects.create("shapes", classes=[ClassSpec("cat"), ClassSpec("dog")])
    service.importing.images("shapes", write_images(tmp / "imgs", 3), progress=False)
    service.embedding.embed("shapes", progress=False)
    service.embedding.predict("shapes")
    app = build_app(service)
    client = Client(launch(app), verbose=False)
    yield client, service
    client.close()
    app.close()
    service.close()


def decode(rle: dict) -> np.ndarray:
    return mask_api.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


def reasons(service: Service) -> list[str | None]:
    with service.context.sessions.begin() as session:
        return list(session.scalars(select(RegionEvent.reason).order_by(RegionEvent.id)))


def test_segment_save_list_relabel_delete_undo(live) -> None:  # type: ignore[no-untyped-def]
    client, service = live
    prompts = json.dumps({"points": [[24, 20, 1]]})
    result = client.predict("shapes", 1, prompts, api_name="/segment")
    assert len(result["masks"]) == 3
    assert all(decode(m["rle"]).shape == (40, 48) for m in result["masks"])  # the image's size
    best = result["masks"][result["best"]]
    assert decode(best["rle"]).sum() == best["area"]

    saved = client.predict("shapes", 1, prompts, result["best"], "dog", api_name="/add_instance")
    assert saved["label"] == "dog" and saved["area"] == best["area"]
    listed = client.predict("shapes", 1, api_name="/instances")
    assert [i["id"] for i in listed] == [saved["id"]]
    assert client.predict("shapes", saved["id"], "cat", api_name="/relabel_instance")["label"] == "cat"
    client.predict("shapes", saved["id"], "drawn twice", api_name="/delete_instance")
    assert reasons(service)[-2:] == [None, "drawn twice"]  # relabel without one (the default ""), delete with
    with pytest.raises(AppError, match="reason: 501 characters; at most 500"):
        client.predict("shapes", saved["id"], "dog", "r" * 501, api_name="/relabel_instance")
    assert client.predict("shapes", 1, api_name="/instances") == []
    assert client.predict("shapes", api_name="/undo_region")["undone"] == "delete"
    assert [i["label"] for i in client.predict("shapes", 1, api_name="/instances")] == ["cat"]


def test_bad_prompts_are_named(live) -> None:  # type: ignore[no-untyped-def]
    client, _ = live
    with pytest.raises(AppError, match="points"):
        client.predict("shapes", 1, json.dumps({"points": [[999, 5, 1]]}), api_name="/segment")
    with pytest.raises(AppError, match="prompts"):
        client.predict("shapes", 1, "not json", api_name="/segment")


def test_propose_and_decide(live) -> None:  # type: ignore[no-untyped-def]
    client, _ = live
    # the tiny random Sam rates its masks low: open the generator's filters so that regions come out
    summary = client.predict("shapes", 2, 0.0, 0.0, 0.0, api_name="/propose_regions")
    assert summary["images"] == 1 and not summary["errors"] and summary["proposed"] > 0
    queue = client.predict("shapes", 2, 50, api_name="/proposals")
    assert len(queue) == summary["proposed"]
    assert [p["uncertainty"] for p in queue] == sorted((p["uncertainty"] for p in queue), reverse=True)
    decided = client.predict("shapes", queue[0]["id"], True, "", api_name="/decide_proposal")
    assert decided["status"] == "accepted" and decided["instance"]["label"] in ("cat", "dog")
    assert len(client.predict("shapes", 2, 50, api_name="/proposals")) == len(queue) - 1
    assert client.predict("shapes", 3, 0.0, 0.0, 0.0, api_name="/propose_regions")["proposed"] > 0
    other = client.predict("shapes", 3, 50, api_name="/proposals")[0]
    assert client.predict("shapes", other["id"], False, "", api_name="/decide_proposal")["status"] == "rejected"
    assert client.predict("shapes", 3, 0.0, 0.0, 0.0, api_name="/propose_regions")["proposed"] == 0  # remembered
