"""Browsing a project: pages of images predicted as one class (most confident first, near-duplicates
grouped together) and text search by text-to-image cosine on the cached embeddings. Numpy in,
numpy out; the service adds paths and names."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import validation
from core.errors import InvalidInput
from core.store.schema import Image
from core.usecases.browse.results import ImageFile

DUPLICATE_COSINE = 0.95
MAX_PAGE_SIZE = 200
MAX_PAGE = 1_000_000
MAX_FILES = 1000    # image_files: ids in one query
SEARCH_TEMPLATES = ("{}", "a photo of {}.")


@dataclass(frozen=True)
class Page:
    positions: np.ndarray     # rows of the project state, in display order
    scores: np.ndarray        # confidence (grid) or cosine (search) of each row
    groups: np.ndarray        # near-duplicate group of each row (equal ids = one group)
    total: int                # rows matching before paging
    page: int
    pages: int


def image_files(session: Session, *, image_ids: Sequence[int]) -> dict[int, ImageFile]:
    """image_id -> its path as imported, readable copy and sha256, in one query (at most
    MAX_FILES ids, each checked by validation.record_id)."""
    ids = validation.unique_ids(image_ids, field="image_ids", maximum=MAX_FILES)
    rows = session.execute(select(Image.id, Image.original_path, Image.file_path, Image.sha256)
                           .where(Image.id.in_(ids)))
    return {int(i): ImageFile(image_id=int(i), path=path, file_path=file_path or "", sha256=sha)
            for i, path, file_path, sha in rows}


def check_page(page: object, page_size: object) -> tuple[int, int]:
    """A page number (0 is the first; past the last means the last) and a page size (1..MAX_PAGE_SIZE),
    both whole numbers: floats, bools and text other than digits are refused."""
    size = validation.capped_limit(page_size, field="page_size", maximum=MAX_PAGE_SIZE)
    first = page == "0" or (isinstance(page, numbers.Integral) and not isinstance(page, bool) and page == 0)
    return (0 if first else validation.capped_limit(page, field="page (0 is the first)", maximum=MAX_PAGE)), size


def predicted_as(probs: np.ndarray, labels: np.ndarray, class_index: int, *, include_labeled: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose top class is `class_index`, most confident first (ties: lower row first)."""
    top = probs.argmax(axis=1)
    mask = top == class_index
    if not include_labeled:
        mask &= labels < 0
    rows = np.flatnonzero(mask)
    confidence = probs[rows, class_index]
    order = np.lexsort((rows, -confidence))
    return rows[order], confidence[order]


def group_near_duplicates(embeddings: np.ndarray, *, threshold: float = DUPLICATE_COSINE) -> np.ndarray:
    """Greedy grouping in the given order: each row joins the first earlier leader it is a
    near-duplicate of, else leads a new group. Returns one group id per row (the leader's index)."""
    n = embeddings.shape[0]
    groups = np.arange(n)
    if n < 2:
        return groups
    sims = embeddings @ embeddings.T
    leaders: list[int] = []
    for i in range(n):
        close = [j for j in leaders if sims[i, j] >= threshold]
        if close:
            groups[i] = close[0]
        else:
            leaders.append(i)
    return groups


def grouped_order(groups: np.ndarray) -> np.ndarray:
    """A permutation that puts each group's members right after its leader, leaders in order."""
    first: dict[int, int] = {}
    for i, g in enumerate(groups.tolist()):
        first.setdefault(g, i)
    return np.array(sorted(range(groups.size), key=lambda i: (first[int(groups[i])], i)), dtype=np.int64)


def paginate(rows: np.ndarray, scores: np.ndarray, embeddings: np.ndarray, *, page: int, page_size: int
             ) -> Page:
    """One page of `rows` (already ranked), with near-duplicates on the page grouped together."""
    page, page_size = check_page(page, page_size)
    pages = max(1, -(-rows.size // page_size))
    page = min(page, pages - 1)
    chosen = slice(page * page_size, (page + 1) * page_size)
    on_page, on_scores = rows[chosen], scores[chosen]
    groups = group_near_duplicates(embeddings[on_page]) if on_page.size else np.zeros(0, dtype=np.int64)
    order = grouped_order(groups)
    return Page(positions=on_page[order], scores=on_scores[order], groups=on_page[groups][order],
                total=int(rows.size), page=page, pages=pages)


def query_vector(encode_texts, text: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The L2-normalised mean of the text's template embeddings (D,); the text is checked as a prompt."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text: type what the images should show, e.g. 'a dog on a beach'")
    text = validation.prompt(text, field="text")
    vectors = np.asarray(encode_texts([t.format(text) for t in SEARCH_TEMPLATES]), dtype=np.float32)
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def search(embeddings: np.ndarray, labels: np.ndarray, query: np.ndarray, *, limit: int,
           unlabeled_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Rows with the highest cosine to `query`, best first, and their cosines."""
    limit = validation.capped_limit(limit, field="limit", maximum=MAX_PAGE_SIZE)
    if embeddings.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if query.shape != (embeddings.shape[1],):
        raise InvalidInput(f"text: the model's text vectors have {query.shape[0]} dims, the cached image "
                           f"embeddings {embeddings.shape[1]}; embed the project with this model first")
    scores = embeddings @ query
    rows = np.flatnonzero(labels < 0) if unlabeled_only else np.arange(scores.size)
    k = min(limit, rows.size)
    if k == 0:
        return rows, scores[rows]
    part = rows[np.argpartition(-scores[rows], k - 1)[:k]] if k < rows.size else rows
    order = np.lexsort((part, -scores[part]))
    return part[order], scores[part[order]]
