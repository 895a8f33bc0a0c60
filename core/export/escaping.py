"""User text (project, class and file names) inside the Markdown files clipmark writes or shows: the
model card, the Hugging Face dataset card, the web app's training report. (CSV cells: tables.csv_safe.)"""

from __future__ import annotations

# Markdown's inline syntax (emphasis, code, links, images, tables), HTML's, and the `$` of the maths that
# GitHub and other viewers render: backslash-escaped, which CommonMark allows before any ASCII punctuation.
# "-", "." and "#" act only at the start of a line, where user text is never put, so names like
# "golden-retriever" stay readable in the raw file.
MARKDOWN_SPECIAL = frozenset("\\`*_~[]()!|<>&$")


def markdown_text(text: object) -> str:
    """User text (project, class and file names) as literal text inside a Markdown line: the
    characters Markdown or HTML would act on are escaped, line breaks become spaces."""
    flat = " ".join(str(text).splitlines())
    return "".join("\\" + c if c in MARKDOWN_SPECIAL else c for c in flat)
