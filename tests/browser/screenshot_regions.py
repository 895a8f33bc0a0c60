"""Take the screenshot of the Label view's region mode (docs/regions-view.png): the demo project
with the tiny random-weights CLIP and Sam (so masks and classes are not meaningful), one instance
saved and SAM's candidates for a new click on screen, in headless Chromium.

Usage: .venv/bin/python -m tests.browser.screenshot_regions docs/regions-view.png"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from core.demo import prepare_demo

from core.service import Service
from tests.browser.screenshot import shrink
from tests.browser.test_labeling import ARGS, CHROMIUM
from tests.webapp.conftest import launch, tiny_settings
from webapp.app import build_app


def main(out: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory(prefix="clipmark-shot-") as folder:
        service = Service(tiny_settings(Path(folder), user="annotator"))
        service.wait_job(prepare_demo(service)["job"]["job_id"], timeout=300)
        app = build_app(service)
        url = launch(app)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 820})
            page.goto(url)
            page.wait_for_function("window.cmKeysInstalled === true && window.cmRegionsInstalled === true")
            expect(page.locator("#cm-card img.cm-main")).to_be_visible(timeout=30_000)
            page.keyboard.press("r")
            picture = page.locator("#cm-rcard img.cm-rimg")
            expect(picture).to_be_visible()
            box = picture.bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4)
            expect(page.locator("#cm-rcard img.cm-cand.cm-on")).to_be_visible()
            page.keyboard.press("Enter")
            expect(page.locator("#cm-rside .cm-inst")).to_have_count(1)
            page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
            expect(page.locator("#cm-rside")).to_contain_text("CLIP proposes for this mask")
            page.screenshot(path=out)
            browser.close()
        app.close()
        service.close()
    shrink(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/regions-view.png")
