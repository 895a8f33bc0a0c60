"""The HTML the views render shows user text as text: a class named like an XSS payload comes out
as characters, never as an element or an attribute."""

from __future__ import annotations

from html.parser import HTMLParser

from core.usecases.browse.results import GridItem
from core.usecases.results import Guess, Item, Progress, Reason
from webapp import render

XSS = "<img src=x onerror=alert(1)>"
QUOTED = '" onmouseover="alert(2)'


class Parsed(HTMLParser):
    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_inert(markup: str, *, shows: str) -> Parsed:
    parsed = Parsed(markup)
    for tag, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert attrs.get("src") != "x", (tag, attrs)
    assert shows in "".join(parsed.text) or any(shows in (v or "") for _, a in parsed.tags for v in a.values())
    return parsed


def test_label_view_pieces_show_names_as_text() -> None:
    item = Item(image_id=7, path=f"photos/{XSS}.jpg", file_path="/m/a.jpg", sha256=None, label=XSS,
                top=(Guess(XSS, 0.7), Guess(QUOTED, 0.3)), reason=Reason("margin_diverse", 0.4))
    card = assert_inert(render.card(item, url="gradio_api/file=/t/a.jpg", error=None, prefetch=["gradio_api/file=/b"]),
                        shows=XSS)
    assert [a.get("class") for t, a in card.tags if t == "img"] == ["cm-main", "cm-prefetch"]
    progress = Progress(labeled=3, images=12, embedded=12, skipped=0, strategy="margin", model_version="adapted-n3")
    side = render.side(item, progress, last=f"#7 labeled {XSS}")
    parsed = assert_inert(side, shows=XSS)
    assert "3 of 12 labeled" in "".join(parsed.text) and "70%" in "".join(parsed.text)
    picker = assert_inert(render.class_picker([XSS, QUOTED, "cat"]), shows=XSS)
    labels = [a["data-label"] for t, a in picker.tags if t == "button"]
    assert labels == [XSS, QUOTED, "cat"]  # exact names round-trip through the attribute


def test_grids_jobs_and_review_escape_too() -> None:
    items = [GridItem(image_id=i, path=path, file_path="", sha256=None, confidence=0.5, group=group)
             for i, path, group in ((1, XSS, 1), (2, "b.jpg", 1), (3, "c.jpg", 3))]
    tiles = assert_inert(render.tiles(items, url_of=lambda i: None if i.image_id == 1 else "u",
                                      caption=lambda i: XSS, empty=""), shows=XSS)
    grouped = [a["class"] for t, a in tiles.tags if t == "div" and "data-id" in a]
    assert grouped == ["cm-tile cm-grouped", "cm-tile cm-grouped", "cm-tile"]
    job = {"job_id": "j", "kind": "import", "project": XSS, "status": "failed", "stage": "failed", "done": 1,
           "total": 2, "notes": [XSS], "error": XSS, "finished_at": 100.0}
    assert_inert(render.jobs([job], now=110.0), shows=XSS)
    assert render.jobs([job], now=1000.0) == ""  # finished long ago: no longer shown
    report = {"suspects": [{"image_id": 5, "label": XSS, "suggested": "cat", "p_suggested": 0.9, "p_label": 0.1}],
              "near_duplicates": [{"image_ids": [6, 8], "labels": ["cat", XSS], "cosine": 0.99}]}
    review = assert_inert(render.suspects(report, url_of=lambda i: None, hidden=set()), shows=XSS)
    choices = [a["data-cm-choice"] for t, a in review.tags if t == "button"]
    assert '{"image_ids": [5], "label": "<img src=x onerror=alert(1)>"}' in choices
    assert "No suspects" in render.suspects(report, url_of=lambda i: None, hidden={5, 6})


def test_banner_and_numbers() -> None:
    assert_inert(render.banner("Model not loaded", details=XSS), shows=XSS)
    assert render.banner(None) == ""
    assert (render.pct(0.004), render.pct(0.5), render.pct(0.0)) == ("0.4%", "50%", "0%")
    assert render.file_url("/a b/c.jpg") == "gradio_api/file=/a%20b/c.jpg"
