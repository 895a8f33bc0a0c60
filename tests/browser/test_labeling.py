"""The web app in real Chromium, driven like a person: create a project, upload images, label five
items with the keyboard only, undo one, watch the dashboard counts change, export. Assertions are
on what the page shows; waits are on conditions, never sleeps."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.service import Service
from tests.webapp.conftest import launch, tiny_settings, write_images
from webapp.app import build_app

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
XSS = "<img src=x onerror=alert(1)>"
IMAGES = 8


@pytest.fixture()
def page(tmp_path: Path) -> Iterator[object]:
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    service = Service(tiny_settings(tmp_path))
    app = build_app(service)
    url = launch(app)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        dialogs: list[str] = []
        tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        tab.goto(url)
        tab.wait_for_function("window.cmKeysInstalled === true")
        expect(tab.locator("#cm-who")).to_contain_text("acting as")  # the page's load events have answered
        yield tab
        assert dialogs == [], f"a script ran from user text: {dialogs}"
        browser.close()
    app.close()
    service.close()


def open_tab(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name=name).click()


def test_create_upload_label_with_keys_undo_dashboard_export(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    open_tab(page, "Projects")
    page.locator("#cm-new-name textarea, #cm-new-name input").first.fill("shelter")
    page.locator("#cm-new-classes textarea").fill(f"cat, dog\n{XSS}")
    page.locator("#cm-create").click()
    expect(page.locator("#cm-projects-status")).to_contain_text("Created shelter with 3 classes")
    expect(page.locator("#cm-project input")).to_have_value("shelter")

    files = write_images(tmp_path / "upload", IMAGES)
    page.locator("#cm-upload input[type=file]").set_input_files([str(f) for f in files])
    expect(page.locator("#cm-upload")).to_contain_text(files[-1].stem)  # shown once uploaded
    page.locator("#cm-import-upload").click()
    expect(page.locator("#cm-jobs")).to_contain_text("shelter: import · done", timeout=90_000)

    open_tab(page, "Dashboard")
    progress = page.locator("#cm-dash-progress")
    expect(progress).to_contain_text(f"0 of {IMAGES} images labeled")

    open_tab(page, "Label")
    side = page.locator("#cm-side")
    expect(side).to_contain_text(f"0 of {IMAGES} labeled")
    expect(page.locator("#cm-card img.cm-main")).to_be_visible()
    classes = page.locator("#cm-classes .cm-class")
    expect(classes).to_have_text(["1cat", "2dog", f"3{XSS}"])  # the payload shows as text

    for count, keys in enumerate(["1", "Enter", "3", "/ d o g Enter", "Enter"], start=1):
        for key in keys.split(" "):  # "/" then typing filters the classes; Enter picks the first match
            page.keyboard.press(key)
        expect(side).to_contain_text(f"{count} of {IMAGES} labeled")
        if keys.startswith("/"):
            expect(side).to_contain_text("labeled dog")
    expect(side).to_contain_text("Z undoes it")
    page.keyboard.press("z")
    expect(side).to_contain_text(f"4 of {IMAGES} labeled")
    expect(side).to_contain_text("Undid your accept")
    page.keyboard.press("?")
    expect(page.locator("#cm-help")).to_be_visible()

    open_tab(page, "Dashboard")
    expect(progress).to_contain_text(f"4 of {IMAGES} images labeled")
    expect(page.locator("#cm-throughput")).to_contain_text("tester")
    expect(page.locator("#cm-plot-classes")).to_contain_text("Images per class and label source")

    open_tab(page, "Export")
    page.locator("#cm-export").click()
    expect(page.locator("#cm-download")).to_contain_text("shelter-csv-")
    link = page.locator("#cm-download a[download$='.csv']").first
    with page.expect_download() as download:
        link.click()
    with open(download.value.path(), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == IMAGES
    assert sum(r["source"] == "human" for r in rows) == 4
