"""The Dashboard's honest estimate in real Chromium: the estimate with its interval and the
labels-saved plot show; "accept the rest" asks first, naming how many images and their estimated
accuracy; after confirming, the export carries them with source model-accepted."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.service import Service
from core.usecases.demo import DEMO_CLASSES
from tests.browser.test_labeling import ARGS, CHROMIUM, open_tab
from tests.webapp.conftest import launch, tiny_settings, write_images
from webapp.app import build_app

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect
IMAGES, LEFT = 12, 4


def _labeled(tmp_path: Path) -> Service:
    """A project whose queue was labeled (half of it blind audits) until LEFT images remain."""
    service = Service(tiny_settings(tmp_path))
    write_images(tmp_path / "photos", IMAGES)
    service.projects.create("audited", classes=list(DEMO_CLASSES[:3]))
    assert service.jobs.wait(service.jobs.start_import("audited", [tmp_path / "photos"]).job_id,
                             timeout=120).status == "done"
    service.labeling.set_audit_share("audited", 0.5)
    for _ in range(IMAGES - LEFT):
        item = service.labeling.next_items("audited", n=1)[0]
        service.labeling.decide("audited", image_id=item.image_id, action="accept")
    return service


@pytest.fixture()
def page(tmp_path: Path) -> Iterator[object]:
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    service = _labeled(tmp_path)
    app = build_app(service)
    url = launch(app)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        tab.goto(url)
        expect(tab.locator("#cm-who")).to_contain_text("acting as")
        expect(tab.locator("#cm-project input")).to_have_value("audited")
        yield tab
        browser.close()
    app.close()
    service.close()


def test_estimate_plots_and_accept_the_rest_with_confirmation(page) -> None:  # type: ignore[no-untyped-def]
    open_tab(page, "Dashboard")
    estimate = page.locator("#cm-estimate")
    expect(estimate).to_contain_text(f"Estimated accuracy of the {LEFT} remaining pseudo-labels")
    expect(estimate).to_contain_text("95% interval")
    expect(page.locator("#cm-plot-estimate")).to_contain_text("Estimated accuracy of the remaining pseudo-labels")
    expect(page.locator("#cm-plot-saved")).to_contain_text("Labels saved")
    expect(page.locator("#cm-plot-saved canvas, #cm-plot-saved svg").first).to_be_visible()

    page.locator("#cm-accept-rest").get_by_text("Stop labeling: accept the rest").click()
    page.locator("#cm-accept-ask").click()
    question = page.locator("#cm-accept-question")
    expect(question).to_contain_text(f"Accept {LEFT} remaining pseudo-labels")
    expect(question).to_contain_text("estimated accuracy")
    expect(page.locator("#cm-dash-progress")).to_contain_text(f"{IMAGES - LEFT} of {IMAGES} images labeled")
    page.locator("#cm-accept-confirm").click()
    expect(page.locator("#cm-accept-done")).to_contain_text(f"Accepted {LEFT} pseudo-labels")

    open_tab(page, "Export")
    page.locator("#cm-export").click()
    link = page.locator("#cm-download a[download$='.csv']").first
    with page.expect_download() as download:
        link.click()
    with open(download.value.path(), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(r["source"] == "model-accepted" for r in rows) == LEFT
    assert sum(r["source"] == "human" for r in rows) == IMAGES - LEFT
