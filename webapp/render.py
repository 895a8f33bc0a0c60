"""HTML of the views. Every piece of user text (class names, paths, errors) goes through `esc`, so
it shows as text and is never interpreted as HTML. Images are referenced by URL, never inlined."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from core.usecases.results import Guess, Item, Progress

REASONS = {
    "margin_diverse": "the model is torn between its two best classes, and it differs from the other picks",
    "entropy_diverse": "the model is unsure across several classes, and it differs from the other picks",
    "margin": "the model is torn between its two best classes",
    "entropy": "the model is unsure across several classes",
    "least_confidence": "the model's best guess is weak",
    "cold_start": "it represents a part of the collection nobody has labeled yet",
    "error_seeking": "the model's proposal is likely wrong here (a weak guess, where corrections have been)",
    "typical_first": "it is typical of a group of images nobody has labeled yet",
    "random": "picked at random",
    "not embedded yet": "it has no embedding yet (import order)",
    "skipped earlier": "you skipped it earlier",
    "undone": "you undid its label",
}
KEYS = (("1-9", "pick the numbered class"), ("Enter", "accept the proposal (top class)"),
        ("/", "filter classes by typing; Enter picks the first, Esc clears"), ("S", "skip"),
        ("Z or Backspace", "undo your last decision"), ("?", "show or hide these keys"))


class Tile(Protocol):
    """What a tile shows: a grid item, a search hit (`group`, when present, tints near-duplicates)."""

    @property
    def image_id(self) -> int: ...

    @property
    def path(self) -> str: ...


T = TypeVar("T", bound=Tile)


def esc(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def file_url(path: Path | str) -> str:
    """Relative URL of a file Gradio serves (a static path), so the app also works behind a prefix."""
    return "gradio_api/file=" + quote(str(path))


def pct(value: float) -> str:
    return f"{100 * value:.0f}%" if value >= 0.01 or value == 0 else f"{100 * value:.1f}%"


def banner(text: str | None, *, details: str | None = None) -> str:
    """A warning line; `details` (e.g. a long error with the fix) folds out under it."""
    if not text:
        return ""
    if not details:
        return f'<div class="cm-banner" role="status">{esc(text)}</div>'
    return (f'<details class="cm-banner" role="status"><summary>{esc(text)}</summary>'
            f"<div>{esc(details)}</div></details>")


# -- Label view --------------------------------------------------------------------------------


def card(item: Item | None, *, url: str | None, error: str | None, prefetch: Sequence[str] = ()) -> str:
    """The large image of the Label view, with hidden <img>s that make the browser fetch the next ones."""
    if item is None:
        return '<div class="cm-card"><div class="cm-empty">Nothing left to label in this project.</div></div>'
    shown = (f'<img class="cm-main" src="{esc(url)}" alt="{esc(item.path)}">' if url else
             f'<div class="cm-empty">Cannot show this image: {esc(error)}</div>')
    ahead = "".join(f'<img class="cm-prefetch" src="{esc(u)}" alt="" aria-hidden="true">' for u in prefetch)
    return (f'<div class="cm-card" data-image-id="{int(item.image_id)}">{shown}'
            f'<div class="cm-path">#{int(item.image_id)} · {esc(item.path)}</div>{ahead}</div>')


def side(item: Item | None, progress: Progress, *, last: str = "") -> str:
    """Progress, why the image was queued, and the top-k pseudo-labels with confidence bars."""
    done, total = progress.labeled, max(progress.images, 1)
    parts = [f'<div class="cm-progress" aria-label="progress"><div style="width:{100 * done / total:.1f}%">'
             "</div></div>",
             f'<div class="cm-counts"><span class="cm-labeled">{done:,} of {progress.images:,} labeled</span>'
             f' ({pct(done / total)}) · model {esc(progress.model_version or "none")}</div>']
    if item is not None:
        parts.append(_reason(item))
        parts.append(top_k(item.top))
        if item.label:
            parts.append(f'<div class="cm-reason">Labeled now: <b>{esc(item.label)}</b></div>')
    if last:
        parts.append(f'<div class="cm-last" role="status">{esc(last)}</div>')
    return "".join(parts)


def _reason(item: Item) -> str:
    strategy = item.reason.strategy if item.reason else ""
    score = f" (score {item.reason.score:.2f})" if item.reason and item.reason.score else ""
    return f'<div class="cm-reason">Queued because {esc(REASONS.get(strategy, strategy))}{esc(score)}.</div>'


def top_k(top: Sequence[Guess]) -> str:
    if not top:
        return '<div class="cm-reason">No proposal yet (no embedding): pick a class.</div>'
    rows = []
    for rank, entry in enumerate(top):
        share = max(0.0, min(1.0, float(entry.confidence)))
        rows.append(f'<li class="{"cm-first" if rank == 0 else ""}"><div class="cm-row"><span>{esc(entry.label)}'
                    f'</span><span>{pct(share)}</span></div><div class="cm-bar"><div style="width:{100 * share:.1f}%">'
                    "</div></div></li>")
    return f'<ol class="cm-top" aria-label="proposals">{"".join(rows)}</ol>'


def class_buttons(labels: Sequence[str], *, css: str = "cm-class") -> str:
    """One button per class; the first nine show their number key."""
    return "".join(f'<button type="button" class="{css}" data-label="{esc(name)}"><kbd>'
                   f'{index + 1 if index < 9 else ""}</kbd><span>{esc(name)}</span></button>'
                   for index, name in enumerate(labels))


def class_picker(labels: Sequence[str]) -> str:
    """Class buttons numbered 1-9 (the numbers follow the filter), the filter box, the key help."""
    buttons = class_buttons(labels)
    keys = "".join(f"<tr><td><kbd>{esc(k)}</kbd></td><td>{esc(v)}</td></tr>" for k, v in KEYS)
    return (f'<input id="cm-filter" type="text" autocomplete="off" placeholder="Filter classes (press /)">'
            f'<div class="cm-classlist">{buttons}</div>'
            f'<div class="cm-hint">Keys: <kbd>1</kbd>-<kbd>9</kbd> class · <kbd>Enter</kbd> accept · <kbd>S</kbd> skip'
            f' · <kbd>Z</kbd> undo · <kbd>?</kbd> help</div>'
            f'<div id="cm-help" class="cm-help" hidden><b>Keyboard</b><table>{keys}</table></div>')


# -- grids, review, jobs -----------------------------------------------------------------------


def tiles(items: Sequence[T], *, url_of: Callable[[T], str | None], caption: Callable[[T], str],
          empty: str) -> str:
    """Clickable thumbnails (a click marks or unmarks one); near-duplicate groups are tinted."""
    if not items:
        return f'<div class="cm-empty">{esc(empty)}</div>'
    sizes: dict[int, int] = {}
    for item in items:
        sizes[_group(item)] = sizes.get(_group(item), 0) + 1
    cells = []
    for item in items:
        url, size = url_of(item), sizes[_group(item)]
        picture = (f'<img src="{esc(url)}" alt="{esc(item.path)}" loading="lazy">' if url else
                   f'<div class="cm-noimg">{esc(Path(item.path).name)}<br>(unreadable)</div>')
        dup = f' <span class="cm-dup">≈ group of {size}</span>' if size > 1 else ""
        cells.append(f'<div class="cm-tile{" cm-grouped" if size > 1 else ""}" role="button" aria-pressed="false" '
                     f'data-id="{int(item.image_id)}" title="{esc(item.path)}">{picture}'
                     f'<div class="cm-cap">{esc(caption(item))}{dup}</div></div>')
    return f'<div class="cm-tiles">{"".join(cells)}</div>'


def _group(tile: Tile) -> int:
    """The near-duplicate group of a tile (grid items have one; anything else is its own group)."""
    return int(getattr(tile, "group", tile.image_id))


def shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def jobs(items: Sequence[dict[str, Any]], *, now: float, recent_s: float = 30.0) -> str:
    """Jobs that are queued or running, or finished in the last `recent_s` seconds."""
    items = [j for j in items if j["finished_at"] is None or now - j["finished_at"] <= recent_s]
    if not items:
        return ""
    rows = []
    for job in items[:5]:
        share = job["done"] / job["total"] if job["total"] else (1.0 if job["status"] == "done" else 0.0)
        status = f'{job["kind"]} · {job["stage"]}' + (f' {job["done"]:,}/{job["total"]:,}' if job["total"] else "")
        rows.append(f'<div class="cm-job" data-status="{esc(job["status"])}"><div>{esc(job["project"])}: {esc(status)}'
                    f'</div><div class="cm-progress"><div style="width:{100 * share:.0f}%"></div></div>'
                    + "".join(f'<div class="cm-note" title="{esc(n)}">{esc(shorten(n))}</div>' for n in job["notes"])
                    + (f'<div class="cm-error">{esc(job["error"])}</div>' if job["error"] else "") + "</div>")
    return f'<div class="cm-jobs">{"".join(rows)}</div>'


def suspects(report: dict[str, Any], *, url_of: Callable[[int], str | None], hidden: set[int]) -> str:
    """Overlap conflicts (who said what), suspected label errors and conflicting near-duplicates,
    each with buttons to settle it."""
    cards = [_conflict_card(c, url_of) for c in report.get("conflicts", []) if c["image_id"] not in hidden]
    for s in report["suspects"]:
        if s["image_id"] in hidden:
            continue
        by = f' by {esc(s["annotator"])}' if s.get("annotator") else ""
        cards.append(_suspect_card([s["image_id"]], url_of, (
            f'Labeled <b>{esc(s["label"])}</b>{by}; the model says <b>{esc(s["suggested"])}</b> '
            f'({pct(s["p_suggested"])} vs {pct(s["p_label"])})'),
            [([s["image_id"]], s["label"], f'Keep {s["label"]}'),
             ([s["image_id"]], s["suggested"], f'Change to {s["suggested"]}')]))
    for pair in report["near_duplicates"]:
        a, b = pair["image_ids"]
        if a in hidden or b in hidden:
            continue
        la, lb = pair["labels"]
        cards.append(_suspect_card([a, b], url_of, (
            f'Near-duplicates (cosine {pair["cosine"]:.3f}) labeled <b>{esc(la)}</b> and <b>{esc(lb)}</b>'),
            [([a, b], la, f"Both {la}"), ([a, b], lb, f"Both {lb}")]))
    if not cards:
        return '<div class="cm-empty">No suspects: the labels and the model agree.</div>'
    return f'<div class="cm-suspects">{"".join(cards)}</div>'


def _conflict_card(conflict: dict[str, Any], url_of: Callable[[int], str | None]) -> str:
    said = ", ".join(f'{esc(v["annotator"])} said <b>{esc(v["label"])}</b>' for v in conflict["votes"])
    labels = sorted({v["label"] for v in conflict["votes"] if v["label"] is not None})
    return _suspect_card([conflict["image_id"]], url_of, f"Annotators disagree: {said}",
                         [([conflict["image_id"]], label, f"Final: {label}") for label in labels])


def agreement(report: dict[str, Any]) -> str:
    """Fleiss' kappa, per-annotator agreement with the final label, Cohen's kappa and the confusion
    matrix of each pair (rows: the first annotator's labels, columns: the second's)."""
    if not report["overlap_items"]:
        return '<div class="cm-empty">No item has two opinions yet: set an overlap share in Projects.</div>'
    head = (f'<div>{report["overlap_items"]:,} items with two or more opinions; Fleiss\' kappa '
            f'<b>{kappa_text(report["fleiss_kappa"])}</b></div>')
    people = "".join(f'<tr><td>{esc(name)}</td><td>{row["items"]:,}</td><td>'
                     f'{"n/a" if row["agreement_with_final"] is None else pct(row["agreement_with_final"])}</td></tr>'
                     for name, row in sorted(report["annotators"].items()))
    pairs = "".join(_pair(p, report["classes"]) for p in report["pairs"])
    return (f'<div class="cm-agreement">{head}<table><tr><th>annotator</th><th>items</th>'
            f'<th>agrees with final</th></tr>{people}</table>{pairs}</div>')


def kappa_text(value: float | None) -> str:
    """n/a where kappa is undefined (no items, or one class only on both sides)."""
    return "n/a" if value is None or value != value else f"{value:.3f}"


def _pair(pair: dict[str, Any], classes: Sequence[str]) -> str:
    a, b = pair["annotators"]
    used = [k for k in range(len(classes)) if any(pair["confusion"][k]) or any(r[k] for r in pair["confusion"])]
    cells = "".join(f"<tr><th>{esc(classes[i])}</th>" + "".join(f"<td>{pair['confusion'][i][j]}</td>" for j in used)
                    + "</tr>" for i in used)
    return (f'<details><summary>{esc(a)} / {esc(b)}: {pair["items"]:,} items, Cohen\'s kappa '
            f'{kappa_text(pair["cohen_kappa"])}</summary><table><tr><th>{esc(a)} \\ {esc(b)}</th>'
            + "".join(f"<th>{esc(classes[j])}</th>" for j in used) + f"</tr>{cells}</table></details>")


def _suspect_card(ids: list[int], url_of: Callable[[int], str | None], text: str,
                  choices: list[tuple[list[int], str, str]]) -> str:
    pictures = "".join(f'<img src="{esc(u)}" alt="image {i}">' if (u := url_of(i)) else f"<span>#{i}</span>"
                       for i in ids)
    buttons = "".join(f'<button type="button" data-cm-choice="{esc(json.dumps({"image_ids": ids, "label": label}))}">'
                      f"{esc(title)}</button>" for ids, label, title in choices)
    return f'<div class="cm-suspect">{pictures}<div><div>{text}</div><div>{buttons}</div></div></div>'
