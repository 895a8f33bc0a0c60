"""Stratified train/val/test splits (by class label, or by the main instance class of an image with
regions only) with a leak check: near-duplicate images (cosine of their cached embeddings above a
threshold) are moved into one split, so no copy of a training image is tested on.

The plan holds three small arrays per image (id, class, split), never records; the leak check needs
the project's embeddings (N x D float32) and compares them in blocks of bounded size, through a
clustered self-join (faiss k-means cells) above core.labeling.neighbors.EXACT_LIMIT rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session

from core.errors import Conflict
from core.export.records import Record
from core.labeling import neighbors
from core.store import repo
from core.store.schema import Project


@dataclass(frozen=True)
class SplitPlan:
    names: tuple[str, ...]
    image_ids: np.ndarray          # sorted int64
    split: np.ndarray              # index into names, per image
    leak_check: dict[str, object] = field(default_factory=dict)

    def split_of(self, image_id: int) -> str:
        pos = int(np.searchsorted(self.image_ids, image_id))
        if pos >= self.image_ids.size or self.image_ids[pos] != image_id:
            raise Conflict(f"image {image_id} appeared during the export; run the export again")
        return self.names[int(self.split[pos])]


def stratified_split(labels: np.ndarray, fractions: Sequence[float], *, rng: np.random.Generator) -> np.ndarray:
    """Split index per item: within each label (−1 = unlabeled is a stratum too) a shuffled order is
    cut by largest remainders, so every split gets round(n * fraction) of each class."""
    split = np.zeros(labels.shape[0], dtype=np.int8)
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        counts = _largest_remainder(members.size, fractions)
        split[members] = np.repeat(np.arange(len(fractions), dtype=np.int8), counts)
    return split


def _largest_remainder(n: int, fractions: Sequence[float]) -> np.ndarray:
    quotas = np.asarray(fractions, dtype=np.float64) * n
    counts = np.floor(quotas).astype(np.int64)
    order = np.argsort(-(quotas - counts), kind="stable")  # ties go to the earlier split (train first)
    counts[order[: n - int(counts.sum())]] += 1
    return counts


def near_duplicate_groups(embeddings: np.ndarray, *, threshold: float) -> np.ndarray:
    """Component label per row of the graph 'cosine > threshold' (rows L2-normalised): pairs found
    all-pairs up to neighbors.EXACT_LIMIT rows, through the clustered self-join above."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = embeddings.shape[0]
    if n < 2:
        return np.arange(n)
    rows, cols, _ = neighbors.close_pairs(embeddings, threshold=threshold)
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def keep_groups_together(split: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """Move each group that spans splits into the split most of it is in (ties: the earlier split).
    Returns (new split, groups with more than one image, groups moved, images moved)."""
    split = split.copy()
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    multi = moved_groups = moved_images = 0
    for members in np.split(order, bounds):
        if members.size < 2:
            continue
        multi += 1
        current = split[members]
        target = int(np.bincount(current).argmax())
        wrong = int(np.count_nonzero(current != target))
        if wrong:
            split[members] = target
            moved_groups += 1
            moved_images += wrong
    return split, multi, moved_groups, moved_images


def plan_split(
    session: Session, records: Iterable[Record], *, project: Project, names: tuple[str, ...],
    fractions: Sequence[float], seed: int, leak_threshold: float | None,
) -> SplitPlan:
    """Stratify the (already filtered) records, then apply the leak check where embeddings exist."""
    ids_list: list[int] = []
    label_list: list[int] = []
    classes: dict[str | None, int] = {}
    for record in records:
        ids_list.append(record.image_id)
        stratum = stratum_of(record)
        label_list.append(-1 if stratum is None else classes.setdefault(stratum, len(classes)))
    image_ids = np.asarray(ids_list, dtype=np.int64)
    labels = np.asarray(label_list, dtype=np.int64)
    del ids_list, label_list
    split = stratified_split(labels, fractions, rng=np.random.default_rng(seed))
    if leak_threshold is None:
        return SplitPlan(names, image_ids, split, {"skipped": "disabled"})
    split, report = _leak_check(session, project, image_ids, split, leak_threshold)
    return SplitPlan(names, image_ids, split, report)


def stratum_of(record: Record) -> str | None:
    """What a record is stratified by: its class label, else its most frequent instance class
    (the first such in class-name order on a tie), else None (the unlabeled stratum)."""
    if record.label is not None or not record.instances:
        return record.label
    counts = Counter(instance["label"] for instance in record.instances)
    return min(counts, key=lambda name: (-counts[name], name))


def _leak_check(
    session: Session, project: Project, image_ids: np.ndarray, split: np.ndarray, threshold: float,
) -> tuple[np.ndarray, dict[str, object]]:
    model_id = _model_id(session, project)
    if model_id is None:
        return split, {"skipped": "no embeddings in this project (run `clipmark embed`)"}
    emb_ids, embeddings = repo.load_embeddings(session, project_id=project.id, model_id=model_id)
    keep = np.isin(emb_ids, image_ids)
    positions = np.searchsorted(image_ids, emb_ids[keep])
    groups = near_duplicate_groups(embeddings[keep], threshold=threshold)
    sub, multi, moved_groups, moved_images = keep_groups_together(split[positions], groups)
    split = split.copy()
    split[positions] = sub
    return split, {"threshold": threshold, "model_id": model_id, "embedded": int(positions.size),
                   "near_duplicate_groups": multi, "moved_groups": moved_groups, "moved_images": moved_images}


def _model_id(session: Session, project: Project) -> str | None:
    model_id = (project.settings or {}).get("model_id")
    if model_id:
        return str(model_id)
    embedded = repo.embedded_model_ids(session, project_id=project.id)
    return embedded[0][0] if embedded else None
