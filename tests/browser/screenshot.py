"""Take the README's screenshot of the Label view: the demo project (scikit-image photographs) with
the tiny random-weights model, a few images labeled, in headless Chromium.

Usage: .venv/bin/python -m tests.browser.screenshot docs/label-view.png
The PNG is palette-quantised to stay small (< 300 KB)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

from core.service import Service
from core.usecases.demo import prepare_demo
from tests.browser.test_labeling import ARGS, CHROMIUM
from tests.webapp.conftest import launch, tiny_settings
from webapp.app import build_app

LABELED = {"astronaut.png": "person", "cat-chelsea.png": "cat", "coffee.png": "coffee", "rocket.png": "rocket"}


def main(out: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory(prefix="clipmark-shot-") as folder:
        service = Service(tiny_settings(Path(folder), user="annotator"))
        service.jobs.wait(prepare_demo(service)["job"]["job_id"], timeout=300)
        for item in service.labeling.next_items("demo", n=100):
            name = Path(item["path"]).name
            if name in LABELED:
                service.labeling.decide("demo", image_id=item.image_id, action="correct", label=LABELED[name])
        app = build_app(service)
        url = launch(app)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 820})
            page.goto(url)
            page.wait_for_function("window.cmKeysInstalled === true")
            expect(page.locator("#cm-side")).to_contain_text("labeled", timeout=30_000)
            page.wait_for_function("document.querySelector('#cm-card img.cm-main')?.complete")
            page.screenshot(path=out)
            browser.close()
        app.close()
        service.close()
    shrink(out)


def shrink(out: str) -> None:
    """Palette-quantise the PNG so the docs stay small."""
    Image.open(out).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"{out}: {Path(out).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/label-view.png")
