"""Region mode in real Chromium with the tiny real Sam and the tiny open_clip model: open an image,
click it, see SAM's mask drawn over it, save it with Enter (the class CLIP proposed), see the
instance listed; relabel it with a number key, undo, and propose regions. Waits are on what the
page shows."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.service import Service
from core.store.repo import ClassSpec
from tests.browser.test_labeling import ARGS, CHROMIUM
from tests.webapp.conftest import launch, tiny_settings, write_images
from webapp.app import build_app

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect



@pytest.fixture()
def page(tmp_path: Path) -> Iterator[object]:
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    service = Service(tiny_settings(tmp_path))
    service.projects.create("shapes", classes=[ClassSpec("cat"), ClassSpec("dog"), ClassSpec("bird")])
    service.importing.images("shapes", write_images(tmp_path / "imgs", 4), progress=False)
    service.embedding.embed("shapes", progress=False)
    service.embedding.predict("shapes")
    # regions proposed ahead on image 3 (the tiny random Sam rates its masks low: its filters are opened)
    service.regions.propose("shapes", image_ids=[2, 3], pred_iou_thresh=0.0, stability_score_thresh=0.0,
                            min_confidence=0.0)
    app = build_app(service)
    url = launch(app)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        tab = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        tab.set_default_timeout(30_000)
        tab.goto(url)
        tab.wait_for_function("window.cmKeysInstalled === true && window.cmRegionsInstalled === true")
        yield tab
        browser.close()
    app.close()
    service.close()


def test_click_mask_accept_listed_relabel_undo(page) -> None:  # type: ignore[no-untyped-def]
    expect(page.locator("#cm-card img.cm-main")).to_be_visible()
    page.keyboard.press("r")
    picture = page.locator("#cm-rcard img.cm-rimg")
    expect(picture).to_be_visible()
    expect(page.locator("#cm-rside")).to_contain_text("No instances on this image yet")

    box = picture.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    overlay = page.locator("#cm-rcard img.cm-cand.cm-on")
    expect(overlay).to_be_visible()                                   # the mask is drawn over the image
    assert overlay.get_attribute("src").startswith("data:image/png;base64,")
    expect(page.locator("#cm-rcard .cm-dot.cm-pos")).to_have_count(1)
    expect(page.locator("#cm-rcard .cm-mchoice")).to_have_count(3)    # SAM's three masks to choose from
    expect(page.locator("#cm-rside")).to_contain_text("CLIP proposes for this mask")

    page.keyboard.press("m")                                          # another of SAM's masks
    expect(page.locator("#cm-rcard .cm-mchoice.cm-on")).to_have_count(1)
    page.keyboard.press("Enter")
    listed = page.locator("#cm-rside .cm-inst")
    expect(listed).to_have_count(1)                                   # the instance is listed
    expect(page.locator("#cm-rside")).to_contain_text("Saved #1")
    expect(page.locator("#cm-rcard img.cm-rinst")).to_be_visible()    # and drawn with the image's instances
    expect(page.locator("#cm-rcard img.cm-cand")).to_have_count(0)

    listed.first.locator(".cm-inst-pick").click()                     # select it, then 2 = second class
    page.keyboard.press("2")
    expect(listed.first).to_contain_text("dog")

    page.keyboard.press("z")                                          # undo the relabel, then the save
    expect(page.locator("#cm-rside")).to_contain_text("Undid your relabel")
    page.keyboard.press("z")
    expect(page.locator("#cm-rside")).to_contain_text("No instances on this image yet")

    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    expect(overlay).to_be_visible()
    page.keyboard.press("3")                                          # save with a chosen class
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("bird")


def test_clicks_cross_the_wire_as_small_payloads(page) -> None:  # type: ignore[no-untyped-def]
    """A click sends its prompts (a few numbers) and gets back a few KB of HTML and PNG."""
    expect(page.locator("#cm-card img.cm-main")).to_be_visible()
    page.keyboard.press("r")
    picture = page.locator("#cm-rcard img.cm-rimg")
    expect(picture).to_be_visible()
    sent: list[int] = []
    page.on("request", lambda r: sent.append(len(r.post_data or "")) if "/queue/join" in r.url else None)
    box = picture.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    expect(page.locator("#cm-rcard img.cm-cand.cm-on")).to_be_visible()
    assert sent and max(sent) < 2_000
    card_bytes = len(page.locator("#cm-rcard").evaluate("e => e.outerHTML"))
    assert card_bytes < 60_000


def test_review_proposals_with_keys(page) -> None:  # type: ignore[no-untyped-def]
    """V shows the least certain proposal (on whichever image), X rejects it, V brings the next one,
    Enter accepts it as an instance of the class CLIP gave it."""
    expect(page.locator("#cm-card img.cm-main")).to_be_visible()
    page.keyboard.press("r")
    expect(page.locator("#cm-rcard img.cm-rimg")).to_be_visible()
    card = page.locator("#cm-rcard")
    page.keyboard.press("v")
    expect(card.locator("img.cm-prop")).to_be_visible()                # the proposal's mask over its image
    first = card.get_attribute("data-proposal")
    assert first
    page.keyboard.press("x")
    expect(page.locator("#cm-rside")).to_contain_text(f"Rejected proposal #{first}")
    page.keyboard.press("v")
    expect(card.locator("img.cm-prop")).to_be_visible()
    expect(card).not_to_have_attribute("data-proposal", first)         # a rejected one is not offered again
    page.keyboard.press("Enter")
    expect(page.locator("#cm-rside")).to_contain_text("Accepted proposal as #1")
    expect(page.locator("#cm-rside .cm-inst")).to_have_count(1)
