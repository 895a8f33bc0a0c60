"""Train a head model from the Export tab in real Chromium: the report shows the held-out accuracy and
the confusion-matrix picture, and the zipped model folder downloads."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.cli import main
from core.service import Service
from tests.browser.test_labeling import ARGS, CHROMIUM
from tests.training.conftest import CLASSES, TINY, copy_cifar
from tests.webapp.conftest import free_port, tiny_settings
from webapp.app import build_app

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect


@pytest.fixture()
def export_page(tmp_path: Path, cifar_dir: Path) -> Iterator[tuple[object, Service]]:
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    settings = tiny_settings(tmp_path)
    db = settings.db
    assert main(["init", "--db", db, "--project", "c", "--labels", CLASSES]) == 0
    labeled = copy_cifar(cifar_dir, tmp_path / "labeled", start=0, count=5)
    assert main(["import", "--db", db, "--project", "c", str(labeled), "--labels-from", "folders"]) == 0
    assert main(["embed", "--db", db, "--project", "c", *TINY]) == 0
    service = Service(settings)
    app = build_app(service)
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        tab = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True).new_page()
        tab.set_default_timeout(60_000)
        tab.goto(url)
        yield tab, service
        browser.close()
    app.close()
    service.close()


def test_train_a_head_model_from_the_export_tab(export_page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page, service = export_page
    expect(page.locator("#cm-project input")).to_have_value("c")
    page.get_by_role("tab", name="Export").click()
    page.locator("#cm-train-panel").get_by_text("Train a model").click()
    page.locator("#cm-train").click()
    report = page.locator("#cm-train-report")
    expect(report).to_contain_text("Held-out accuracy:", timeout=120_000)
    expect(report).to_contain_text("on 10 human labels")
    expect(report).to_contain_text("airplane")
    picture = page.locator("#cm-train-confusion img")
    expect(picture).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", picture.element_handle()) > 100
    link = page.locator("#cm-train-download a").first
    expect(link).to_be_visible()
    with page.expect_download() as download_info:
        link.click()
    saved = tmp_path / "model.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
    assert any(name.endswith("/model.onnx") for name in names)
    assert any(name.endswith("/README.md") for name in names)
    job = service.jobs.list("c")[0]
    assert job.kind == "train" and job.status == "done"
    page.locator("#cm-train-use").click()
    expect(page.get_by_text("Stored 50 predictions of exported:")).to_be_visible()
