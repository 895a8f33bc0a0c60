"""The web app's API through gradio_client, against the app launched in the test (tiny model,
temporary SQLite): create, import (folder and upload), next item, accept, correct, undo, search,
grid, class edits, dashboard, export."""

from __future__ import annotations

import csv
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from core.service import Service
from tests.webapp.conftest import launch, tiny_settings, write_images
from webapp.app import API, build_app

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Service, Path]]:
    tmp = tmp_path_factory.mktemp("api")
    service = Service(tiny_settings(tmp, import_roots=(tmp,)))
    app = build_app(service)
    client = Client(launch(app), verbose=False)
    yield client, service, tmp
    client.close()
    app.close()
    service.close()


def wait_job(client: Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.predict(job_id, api_name="/job")
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_every_api_name_is_published(live) -> None:  # type: ignore[no-untyped-def]
    client, *_ = live
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {f"/{fn.__name__}" for fn in API} | {"/export"} <= set(named)
    assert not any(name.startswith("/ui_") for name in named)  # UI plumbing stays undocumented


def test_label_loop_through_the_api(live) -> None:  # type: ignore[no-untyped-def]
    client, service, tmp = live
    folder = tmp / "photos"
    write_images(folder, 10)
    created = client.predict("pets", "cat, dog\nbird", api_name="/create_project")
    assert created["classes"] == ["cat", "dog", "bird"]
    job = wait_job(client, client.predict("pets", str(folder), "", True, api_name="/import_folder")["job_id"])
    assert job["status"] == "done", job
    assert job["result"]["import"]["imported"] == 10 and job["result"]["predict"]["images"] == 10

    first = client.predict("pets", api_name="/next_item")
    item = first["item"]
    assert first["progress"] == {**first["progress"], "labeled": 0, "images": 10, "embedded": 10}
    assert len(item["top"]) == 3 and abs(sum(t["confidence"] for t in item["top"]) - 1) < 1e-4
    accepted = client.predict("pets", item["image_id"], "accept", "", api_name="/decide")
    assert accepted["decision"]["label"] == item["top"][0]["label"]
    assert accepted["progress"]["labeled"] == 1 and accepted["item"]["image_id"] != item["image_id"]

    second = accepted["item"]["image_id"]
    corrected = client.predict("pets", second, "correct", "bird", api_name="/decide")
    assert corrected["decision"]["label"] == "bird" and corrected["progress"]["labeled"] == 2
    undone = client.predict("pets", api_name="/undo")
    assert undone["image_id"] == second and undone["label"] is None
    assert client.predict("pets", api_name="/next_item")["progress"]["labeled"] == 1

    found = client.predict("pets", "a photo of a bird", 5, True, api_name="/search")
    assert len(found["items"]) == 5 and all(i["label"] is None for i in found["items"])
    scores = [i["score"] for i in found["items"]]
    assert scores == sorted(scores, reverse=True)
    many = client.predict("pets", [i["image_id"] for i in found["items"][:2]], "correct", "dog", api_name="/label_many")
    assert [m["label"] for m in many] == ["dog", "dog"]

    path, report = client.predict("pets", "csv", "human", "labeled", 0.0, "", api_name="/export")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert report["counts"]["labeled"] == 3 == len(rows)
    assert sorted(r["label"] for r in rows) == sorted([item["top"][0]["label"], "dog", "dog"])


def test_upload_import_grid_and_dashboard(live) -> None:  # type: ignore[no-untyped-def]
    client, _, tmp = live
    paths = write_images(tmp / "uploads", 4, seed=1)
    zipped = tmp / "more.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for extra in write_images(tmp / "zipped", 2, seed=9):
            archive.write(extra, f"inside/{extra.name}")
    client.predict("uploaded", "red, blue", api_name="/create_project")
    uploads = [handle_file(str(p)) for p in [*paths, zipped]]
    started = client.predict("uploaded", uploads, "", True, api_name="/import_files")
    job = wait_job(client, started["job_id"])
    assert job["status"] == "done" and job["result"]["import"]["imported"] == 6
    assert [j["job_id"] for j in client.predict("uploaded", api_name="/jobs")] == [started["job_id"]]

    pages = {label: client.predict("uploaded", label, 0, 4, api_name="/grid_page") for label in ("red", "blue")}
    assert sum(p["total"] for p in pages.values()) == 6
    for page in pages.values():
        confidences = [i["confidence"] for i in page["items"]]
        assert confidences == sorted(confidences, reverse=True) and len(confidences) <= 4
    red = [i["image_id"] for i in pages["red"]["items"]] or [i["image_id"] for i in pages["blue"]["items"]]
    client.predict("uploaded", red[:1], "correct", "red", api_name="/label_many")

    board = client.predict("uploaded", api_name="/dashboard")
    counts = {c["label"]: c for c in board["classes"]}
    assert counts["red"]["human"] == 1 and board["sources"]["human"] == 1
    assert board["sources"]["model"] == 5 and board["progress"]["labeled"] == 1
    assert board["accuracy"]["compared"] == 1  # that label was made after the import's prediction run
    assert board["throughput"]["annotators"][0]["annotator"] == "tester"


def test_class_edits_through_the_api(live) -> None:  # type: ignore[no-untyped-def]
    client, _, tmp = live
    write_images(tmp / "edits", 4, seed=2)
    client.predict("edits", "alpha, beta", api_name="/create_project")
    wait_job(client, client.predict("edits", str(tmp / "edits"), "", False, api_name="/import_folder")["job_id"])
    item = client.predict("edits", api_name="/next_item")["item"]
    assert item["reason"]["strategy"] == "not embedded yet" and item["top"] == []
    client.predict("edits", item["image_id"], "correct", "beta", api_name="/decide")
    embedded = wait_job(client, client.predict("edits", "clipmark-tiny", "none", api_name="/embed")["job_id"])
    assert embedded["result"]["embed"]["computed"] == 4 and embedded["result"]["predict"]["images"] == 4
    assert len(client.predict("edits", api_name="/next_item")["item"]["top"]) == 2

    client.predict("edits", XSS, "", "", api_name="/add_class")
    assert client.predict("edits", "beta", api_name="/class_usage")["labels"] == 1
    merged = client.predict("edits", "beta", XSS, api_name="/merge_classes")
    assert merged["moved"] == 1 and merged["archived"] is True
    info = client.predict("edits", api_name="/project_info")
    assert {c["label"]: c["labels"] for c in info["classes"]} == {"alpha": 0, XSS: 1}
    client.predict("edits", XSS, "gamma", api_name="/rename_class")
    deleted = client.predict("edits", "gamma", api_name="/delete_class")
    assert deleted["unlabeled"] == 1
    assert [c["label"] for c in client.predict("edits", api_name="/project_info")["classes"]] == ["alpha"]


def test_errors_name_the_field_and_escape_user_text(live) -> None:  # type: ignore[no-untyped-def]
    client, *_ = live
    client.predict("errors", "one, two", api_name="/create_project")
    with pytest.raises(AppError, match="action: unknown 'approve'"):
        client.predict("errors", 1, "approve", "", api_name="/decide")
    with pytest.raises(AppError, match="no project named 'nope'"):
        client.predict("nope", api_name="/next_item")
    with pytest.raises(AppError, match="&lt;img src=x onerror=alert\\(1\\)&gt;"):
        client.predict("errors", XSS, api_name="/class_usage")
