"""Team mode through the API, against the app launched with logins backed by the store: login is
required, every endpoint acts as the logged-in user and the service checks the role (also for the
UI's own undocumented endpoints), two annotators never get the same item, closing the page gives
the items back, and one session's Label events keep their order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, AuthenticationError
from sqlalchemy import select

from core.service import Service
from core.store.schema import Lease, User
from tests.helpers import project_from_vectors
from tests.webapp.conftest import free_port, tiny_settings
from tests.webapp.test_core_views import clustered
from webapp.app import build_app
from webapp.login import login_check
from webapp.wiring import SessionOrder

PASSWORDS = {"boss": "boss-secret-1", "rita": "rita-secret-1", "ann": "ann-secret-1", "bob": "bob-secret-1"}
ROLES = {"boss": "admin", "rita": "reviewer", "ann": "annotator", "bob": "annotator"}
CLASSES = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Service]]:
    tmp = tmp_path_factory.mktemp("team")
    service = Service(tiny_settings(tmp))
    emb, _, centres = clustered(60, len(CLASSES), seed=3)
    project_from_vectors(service, "pets", embeddings=emb, class_names=CLASSES, head=centres)
    for name, role in ROLES.items():
        service.team.add_user(name, role=role, password=PASSWORDS[name])
    assert service.team.team_mode()
    app = build_app(service)
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                           auth=login_check(service))
    yield url, service
    app.close()
    service.close()


def login(url: str, name: str) -> Client:
    return Client(url, auth=(name, PASSWORDS[name]), verbose=False)


@pytest.fixture(scope="module")
def clients(team: tuple[str, Service]) -> Iterator[dict[str, Client]]:
    url, _ = team
    opened = {name: login(url, name) for name in ROLES}
    yield opened
    for client in opened.values():
        client.close()


def test_login_is_required_in_team_mode(team: tuple[str, Service]) -> None:
    url, _ = team
    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        Client(url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(url, auth=("ann", "not-her-password"), verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(url, auth=("nobody", "whatever-password"), verbose=False)
    raw = httpx.post(f"{url}gradio_api/call/list_users", json={"data": []}, timeout=30)
    assert raw.status_code == 401  # the plain HTTP API too


def test_annotator_cannot_export_manage_users_or_resolve(clients: dict[str, Client]) -> None:
    ann = clients["ann"]
    item = ann.predict("pets", api_name="/next_item")["item"]
    forbidden: list[tuple[str, tuple[Any, ...], str]] = [
        ("/export", ("pets", "csv", "all", "all", 0.0, ""), "may not export"),
        ("/add_user", ("mallory", "admin", "mallory-secret"), "may not manage users"),
        ("/list_users", (), "may not manage users"),
        ("/disable_user", ("boss",), "may not manage users"),
        ("/resolve", ("pets", item["image_id"], "cat"), "may not review"),
        ("/set_overlap", ("pets", 0.5, 2), "may not manage projects"),
        ("/create_project", ("mine", "a, b"), "may not manage projects"),
        # the page's own endpoints are not documented, but callable: the service checks them as well
        ("/ui_add_user", ("mallory", "admin", "mallory-secret"), "may not manage users"),
        ("/ui_disable_user", ("boss",), "may not manage users"),
        ("/ui_users", (), "may not manage users"),
    ]
    for api_name, args, message in forbidden:
        with pytest.raises(AppError, match=message):
            ann.predict(*args, api_name=api_name)
    assert ann.predict(api_name="/whoami") == {"user": "ann", "role": "annotator", "team": True, "admin": False}
    decided = ann.predict("pets", item["image_id"], "correct", "dog", api_name="/decide")
    assert decided["decision"]["label"] == "dog"  # labeling is what an annotator may do
    history = ann.predict("pets", "ann", "", None, 10, api_name="/history")
    assert history[0]["annotator"] == "ann" and history[0]["image_id"] == item["image_id"]


def test_reviewer_resolves_but_cannot_export_and_admin_can(clients: dict[str, Client]) -> None:
    rita, boss = clients["rita"], clients["boss"]
    image_id = rita.predict("pets", api_name="/next_item")["item"]["image_id"]
    resolved = rita.predict("pets", image_id, "bird", api_name="/resolve")
    assert resolved["policy"] == "reviewer" and resolved["label"] == "bird"
    with pytest.raises(AppError, match="may not export"):
        rita.predict("pets", "csv", "all", "all", 0.0, "", api_name="/export")
    with pytest.raises(AppError, match="may not manage users"):
        rita.predict(api_name="/list_users")
    path, report = boss.predict("pets", "csv", "human", "labeled", 0.0, "", api_name="/export")
    assert Path(path).is_file() and report["counts"]["labeled"] >= 1
    users = {u["name"]: u for u in boss.predict(api_name="/list_users")}
    assert {n: users[n]["role"] for n in ROLES} == ROLES
    assert boss.predict(api_name="/whoami")["admin"] is True
    last = boss.predict("pets", "rita", "review", None, 5, api_name="/history")
    assert [(e["annotator"], e["image_id"], e["after"]) for e in last] == [("rita", image_id, "bird")]


def held(service: Service, name: str) -> set[int]:
    with service.context.sessions.begin() as session:
        user_id = session.scalar(select(User.id).where(User.name == name))
        return set(session.scalars(select(Lease.image_id).where(Lease.user_id == user_id, Lease.done.is_(False))))


def test_two_annotators_never_get_the_same_item(team: tuple[str, Service], clients: dict[str, Client]) -> None:
    _, service = team
    got: dict[str, list[int]] = {"ann": [], "bob": []}

    def label(name: str) -> None:
        client = clients[name]
        item = client.predict("pets", api_name="/next_item")["item"]
        for _ in range(8):
            got[name].append(item["image_id"])
            item = client.predict("pets", item["image_id"], "accept", "", api_name="/decide")["item"]

    threads = [threading.Thread(target=label, args=(name,)) for name in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(got["ann"]) == len(got["bob"]) == 8
    assert not set(got["ann"]) & set(got["bob"])
    assert not held(service, "ann") & held(service, "bob")  # nor do the items they hold now


def test_an_item_held_by_one_annotator_is_refused_to_another_until_given_back(
        team: tuple[str, Service], clients: dict[str, Client]) -> None:
    url, service = team
    other_page = login(url, "bob")  # a second page of bob's
    item = other_page.predict("pets", api_name="/next_item")["item"]
    assert item["image_id"] in held(service, "bob")
    with pytest.raises(AppError, match="assigned to someone else"):
        clients["ann"].predict("pets", item["image_id"], "correct", "cat", api_name="/decide")
    assert other_page.predict("pets", api_name="/release_leases")["released"] >= 1
    assert not held(service, "bob")
    taken = clients["ann"].predict("pets", item["image_id"], "correct", "cat", api_name="/decide")
    assert taken["decision"]["image_id"] == item["image_id"]
    other_page.close()


def test_closing_the_page_gives_the_items_back(team: tuple[str, Service], monkeypatch: pytest.MonkeyPatch) -> None:
    url, service = team
    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.5")  # notice the closed page sooner than the 15 s default
    page = login(url, "bob")
    item = page.predict("pets", api_name="/next_item")["item"]
    assert item["image_id"] in held(service, "bob")
    page.close()  # ends the session's heartbeat: Gradio runs the app's unload event
    deadline = time.monotonic() + 30
    while held(service, "bob") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not held(service, "bob")


def test_a_later_event_of_the_same_session_is_not_overwritten() -> None:
    order, started, log = SessionOrder(), threading.Event(), []
    release = threading.Event()

    def slow_first_render() -> str:
        started.set()
        release.wait(10)
        return "first"

    results: dict[str, tuple[bool, Any]] = {}
    first = threading.Thread(target=lambda: results.setdefault("first", order.run("s1", 1, slow_first_render)))
    first.start()
    started.wait(10)
    other = order.run("s2", 1, lambda: log.append("other session ran") or "other")  # not held up
    assert other == (True, "other") and log == ["other session ran"]
    second = threading.Thread(target=lambda: results.setdefault("second", order.run("s1", 2, lambda: "second")))
    second.start()
    release.set()
    first.join(10)
    second.join(10)
    assert results == {"first": (True, "first"), "second": (True, "second")}  # one at a time, in order
    assert order.run("s1", 1, lambda: "stale") == (False, "stale")  # an older view never replaces a newer
    assert order.run("s1", None, lambda: "api") == (True, "api")
