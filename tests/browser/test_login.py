"""Team mode in real Chromium: the app asks for a login, a wrong password is refused, an annotator
sees who is signed in and no Users tab, labels with a key, and logging out gives the item back."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.service import Service
from core.store.schema import Lease, User
from tests.browser.test_labeling import ARGS, CHROMIUM
from tests.helpers import project_from_vectors
from tests.webapp.conftest import free_port, tiny_settings
from tests.webapp.test_core_views import clustered
from webapp.app import build_app
from webapp.login import login_check

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect


@pytest.fixture()
def team_page(tmp_path: Path) -> Iterator[tuple[object, Service]]:
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    service = Service(tiny_settings(tmp_path))
    emb, _, centres = clustered(20, 2, seed=5)
    project_from_vectors(service, "pets", embeddings=emb, class_names=["cat", "dog"], head=centres)
    service.team.add_user("boss", role="admin", password="boss-secret-1")
    service.team.add_user("ann", role="annotator", password="ann-secret-1")
    app = build_app(service)
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                           auth=login_check(service))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        tab = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        tab.set_default_timeout(30_000)
        tab.goto(url)
        yield tab, service
        browser.close()
    app.close()
    service.close()


def live_leases(service: Service, name: str) -> int:
    with service.context.sessions.begin() as session:
        user_id = session.scalar(select(User.id).where(User.name == name))
        return len(session.scalars(select(Lease.image_id).where(Lease.user_id == user_id,
                                                                Lease.done.is_(False))).all())


def log_in(page, name: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def test_login_label_and_logout(team_page) -> None:  # type: ignore[no-untyped-def]
    page, service = team_page
    log_in(page, "ann", "wrong-password")
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
    log_in(page, "ann", "ann-secret-1")
    expect(page.locator("#cm-who")).to_contain_text("Signed in as ann")
    expect(page.get_by_role("tab", name="Users")).to_have_count(0)  # annotators do not manage users
    expect(page.locator("#cm-project input")).to_have_value("pets")  # the only project opens by itself
    side = page.locator("#cm-side")
    expect(side).to_contain_text("0 of 20 labeled")
    page.wait_for_function("window.cmKeysInstalled === true")
    page.keyboard.press("Enter")
    expect(side).to_contain_text("1 of 20 labeled")
    assert live_leases(service, "ann") >= 1  # the items on screen and prefetched are hers
    page.locator("#cm-logout").click()
    expect(page.get_by_role("button", name="Login")).to_be_visible()
    assert live_leases(service, "ann") == 0
