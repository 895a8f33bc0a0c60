"""User text in the Markdown clipmark writes (model card, dataset card, the web app's training report)
reads as the literal text: a CommonMark renderer turns the escaped text back into exactly the input,
as HTML-escaped text, with no tag, link, emphasis or table cell of its own."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from core.export.escaping import markdown_text

RENDERER = MarkdownIt("commonmark")


def literal(text: str) -> str:
    flat = " ".join(text.splitlines())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def rendered(text: str) -> str:
    return RENDERER.renderInline(markdown_text(text))


def test_the_usual_attacks_render_as_text() -> None:
    for text in ("<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "[click](javascript:alert(1))",
                 "![x](http://e/x.png)", "**bold** _it_ `code` ~~gone~~", "a | b", "&lt;b&gt;", "<http://e>",
                 "line one\nline two", "back\\slash\\", "$$\\Huge{x}$$ costs $5"):
        assert rendered(text) == literal(text)


def test_a_table_row_keeps_its_cells() -> None:
    table = f"| class | n |\n| --- | --- |\n| {markdown_text('a | b')} | 3 |"
    html = MarkdownIt("commonmark").enable("table").render(table)
    assert html.count("<td>") == 2 and "<td>a | b</td>" in html


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40))
def test_any_text_renders_as_itself(text: str) -> None:
    assert rendered(text) == literal(text)
