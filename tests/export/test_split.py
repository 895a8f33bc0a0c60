"""Stratified splits, and the leak check on real CLIP vectors: near-duplicates share a split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import Settings
from core.export.split import keep_groups_together, near_duplicate_groups, stratified_split
from core.service import Service
from core.store import repo
from tests.helpers import load_npz, project_from_vectors


def test_stratified_split_gives_each_class_its_share() -> None:
    labels = np.repeat([0, 1, 2, 3, -1], [10, 7, 3, 1, 9])
    split = stratified_split(labels, (0.8, 0.1, 0.1), rng=np.random.default_rng(0))
    counts = {v: np.bincount(split[labels == v], minlength=3).tolist() for v in (0, 1, 2, 3, -1)}
    assert counts == {0: [8, 1, 1], 1: [5, 1, 1], 2: [3, 0, 0], 3: [1, 0, 0], -1: [7, 1, 1]}
    again = stratified_split(labels, (0.8, 0.1, 0.1), rng=np.random.default_rng(0))
    other = stratified_split(labels, (0.8, 0.1, 0.1), rng=np.random.default_rng(1))
    assert np.array_equal(split, again) and not np.array_equal(split, other)


def test_near_duplicate_groups_are_connected_components() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 16))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    chain = base[0] + 0.2 * base[1]  # near 0; 5 is near `chain` only: 0 ~ chain ~ 5 by transitivity
    emb = np.stack([base[0], base[1], base[2], chain / np.linalg.norm(chain), base[3],
                    (chain + 0.05 * base[4]) / np.linalg.norm(chain + 0.05 * base[4])]).astype(np.float32)
    groups = near_duplicate_groups(emb, threshold=0.97)
    assert groups[0] == groups[3] == groups[5] and len(set(groups.tolist())) == 4
    split, multi, moved_groups, moved_images = keep_groups_together(np.array([1, 0, 0, 0, 2, 0], np.int8), groups)
    assert split.tolist() == [0, 0, 0, 0, 2, 0] and (multi, moved_groups, moved_images) == (1, 1, 1)


@pytest.fixture()
def pets(embeddings_dir: Path, tmp_path: Path) -> tuple[Service, list[int], np.ndarray, int]:
    """Real CLIP vectors of 497 pet photos, plus 30 near-copies (a few % noise) of the first 30."""
    emb, labels, names, _ = load_npz(embeddings_dir / "pets25-val-clip-vitb32.npz")
    rng = np.random.default_rng(5)
    copies = emb[:30] + 0.006 * rng.normal(size=(30, emb.shape[1])).astype(np.float32)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    service = Service(Settings(db=str(tmp_path / "v.sqlite")))
    ids = project_from_vectors(service, "v", embeddings=np.vstack([emb, copies]), class_names=names, head=None)
    all_labels = np.concatenate([labels, labels[:30]])
    with service.context.sessions.begin() as session:
        project_id = repo.project_by_name(session, name="v").id
        classes = repo.classes_of(session, project_id=project_id)
        for image_id, label in zip(ids, all_labels, strict=True):
            event = repo.append_event(session, project_id=project_id, image_id=image_id, action="import",
                                      source="import", label_after_id=classes[label].id)
            repo.set_current_label(session, event=event)
    return service, ids, all_labels, 30


def test_leak_check_keeps_near_duplicates_in_one_split(pets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, ids, labels, n_copies = pets
    n = len(ids) - n_copies
    pairs = [(ids[k], ids[n + k]) for k in range(n_copies)]
    loose = service.exporting.export("v", fmt="csv", out=tmp_path / "loose.csv", split="0.8,0.1,0.1", seed=1,
                           leak_threshold=None)
    split_of = _splits(tmp_path / "loose.csv")
    assert loose.leak_check == {"skipped": "disabled"}
    assert sum(split_of[a] != split_of[b] for a, b in pairs) > 0  # without the check, copies leak
    report = service.exporting.export("v", fmt="csv", out=tmp_path / "tight.csv", split="0.8,0.1,0.1", seed=1)
    split_of = _splits(tmp_path / "tight.csv")
    assert all(split_of[a] == split_of[b] for a, b in pairs)
    leak = report.leak_check
    assert leak["embedded"] == len(ids) and leak["near_duplicate_groups"] >= n_copies
    assert 0 < leak["moved_groups"] <= leak["near_duplicate_groups"] and leak["moved_images"] >= leak["moved_groups"]
    counts = report.counts["per_split"]
    assert abs(counts["train"] - 0.8 * len(ids)) <= leak["moved_images"] + 25  # + one rounding per class
    service.close()


def test_coco_with_a_split_writes_one_file_per_split(pets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, ids, _, n_copies = pets
    report = service.exporting.export("v", fmt="coco", out=tmp_path / "coco", split="0.7,0.3", seed=2)
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == [
        "annotations_train.json", "annotations_val.json", "manifest.json"]
    assert sum(report.counts["per_split"].values()) == len(ids)
    service.close()


def _splits(path: Path) -> dict[int, str]:
    frame = pd.read_csv(path)
    return dict(zip(frame["image_id"], frame["split"], strict=True))
