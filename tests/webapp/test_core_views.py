"""The core modules behind the views: jobs, browse, dashboard numbers, class admin, thumbnails."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from core.errors import Conflict, ImageError, InvalidInput, NotFound
from core.service import Service
from core.store.schema import Event, LabelClass
from core.usecases.browse import dashboard
from core.usecases.browse import pages as browse
from core.usecases.browse.thumbs import ThumbnailCache
from core.usecases.jobs.runner import JobRunner
from core.usecases.projects.results import ClassDeleted, ClassesMerged
from tests.helpers import project_from_vectors
from tests.webapp.conftest import tiny_settings, write_images


def clustered(n: int, k: int, *, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = rng.integers(0, k, size=n)
    emb = centres[truth] + 0.25 * rng.standard_normal((n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb, truth, centres


# -- jobs --------------------------------------------------------------------------------------


def test_jobs_run_in_order_with_progress_and_named_failures() -> None:
    runner, order, gate = JobRunner(), [], threading.Event()

    def first(progress):  # type: ignore[no-untyped-def]
        progress.stage("import", total=2)
        progress(1, 2)
        gate.wait(5)
        order.append("first")
        return {"n": 1}

    def second(progress):  # type: ignore[no-untyped-def]
        order.append("second")
        raise InvalidInput("folder: '/nope' does not exist")

    a = runner.submit(kind="import", project="p", work=first)
    b = runner.submit(kind="embed", project="p", work=second)
    assert runner.get(b.job_id).status == "queued"
    gate.set()
    done_a, done_b = runner.wait(a.job_id, timeout=5), runner.wait(b.job_id, timeout=5)
    assert order == ["first", "second"]
    assert (done_a.status, done_a.result, done_a.done, done_a.total) == ("done", {"n": 1}, 1, 2)
    assert done_b.status == "failed" and done_b.error == "folder: '/nope' does not exist"
    assert [j.job_id for j in runner.list(project="p")] == [b.job_id, a.job_id]
    with pytest.raises(NotFound, match="job_id"):
        runner.get("missing")


# -- browse ------------------------------------------------------------------------------------


def test_grid_ranks_by_confidence_and_groups_near_duplicates() -> None:
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.95, 0.05], [0.7, 0.3]], dtype=np.float32)
    labels = np.array([-1, -1, -1, 0, -1])
    rows, conf = browse.predicted_as(probs, labels, 0)
    assert rows.tolist() == [0, 4, 1] and np.allclose(conf, [0.9, 0.7, 0.6])
    assert browse.predicted_as(probs, labels, 0, include_labeled=True)[0].tolist() == [3, 0, 4, 1]
    emb = np.eye(4, dtype=np.float32)[[0, 1, 0, 2, 1]]  # rows 0/2 and 1/4 are duplicates
    assert browse.group_near_duplicates(emb).tolist() == [0, 1, 0, 3, 1]
    page = browse.paginate(np.arange(5), np.linspace(1, 0.5, 5), emb, page=0, page_size=5)
    assert page.positions.tolist() == [0, 2, 1, 4, 3] and page.groups.tolist() == [0, 0, 1, 1, 3]
    assert browse.paginate(np.arange(5), np.zeros(5), emb, page=9, page_size=2).page == 2  # clamped
    with pytest.raises(InvalidInput, match="page_size"):
        browse.check_page(0, 1000)


def test_search_is_the_exact_top_k_by_cosine() -> None:
    emb, _, centres = clustered(300, 4)
    labels = np.full(300, -1)
    labels[:100] = 0
    rows, scores = browse.search(emb, labels, centres[1], limit=10)
    brute = np.argsort(-(emb @ centres[1]), kind="stable")[:10]
    assert rows.tolist() == brute.tolist() and np.all(np.diff(scores) <= 0)
    unlabeled, _ = browse.search(emb, labels, centres[1], limit=10, unlabeled_only=True)
    assert unlabeled.min() >= 100
    query = browse.query_vector(lambda texts: np.tile(centres[2], (len(texts), 1)), "a cat")
    assert np.isclose(np.linalg.norm(query), 1.0)
    with pytest.raises(InvalidInput, match="text"):
        browse.query_vector(lambda texts: None, "  ")


# -- dashboard ---------------------------------------------------------------------------------


def test_efficiency_curve_rises_with_labels_and_wilson_bounds() -> None:
    emb, truth, _ = clustered(400, 3, seed=1)
    rows = np.arange(200)
    curve = dashboard.efficiency_curve(emb, rows, truth[:200], num_classes=3, text_head=None, logit_scale=100.0,
                                       rng=np.random.default_rng(0))
    assert [c["labels"] for c in curve] == [0, 5, 10, 20, 40, 80, 160]
    assert curve[-1]["accuracy"] > 0.9 > curve[0]["accuracy"]  # cold start (uniform) vs learned
    assert curve[-1]["evaluated"] == 40
    assert dashboard.checkpoints(3) == []
    low, high = dashboard.wilson(45, 50)
    assert low < 0.9 < high and 0 <= low and high <= 1


def test_accuracy_compares_each_label_with_the_run_before_it(service: Service) -> None:
    emb, truth, centres = clustered(60, 3, seed=2)
    ids = project_from_vectors(service, "acc", embeddings=emb, class_names=["a", "b", "c"], head=centres)
    names = ["a", "b", "c"]
    service.embedding.predict("acc")
    stored = service.labeling.state("acc").probs.argmax(axis=1)
    for k in range(6):  # three agree with the stored prediction, three do not
        label = names[stored[k]] if k < 3 else names[(stored[k] + 1) % 3]
        service.labeling.decide("acc", image_id=ids[k], action="correct", label=label)
    service.embedding.predict("acc")
    service.labeling.decide("acc", image_id=ids[10], action="correct", label=names[truth[10]])
    report = service.browse.dashboard("acc")
    runs = report.accuracy["per_run"]
    assert [(r["compared"], r["agree"]) for r in runs][0] == (6, 3)
    assert runs[1]["compared"] == 1 and report.accuracy["compared"] == 7
    assert report.progress.labeled == 7 and report.sources["human"] == 7
    assert sum(c["model"] for c in report.classes) == 60 - 7
    assert report.curve[0]["labels"] == 0


# -- classes -----------------------------------------------------------------------------------


def test_merge_and_delete_append_history_and_archive(tmp_path: Path) -> None:
    # Class edits change the prompts, so the text head is rebuilt with the configured model; these
    # vectors come from no model, so configure one that cannot load (the queue then runs cold).
    service = Service(tiny_settings(tmp_path, model="ViT-B-32", pretrained=str(tmp_path / "missing.pt")))
    emb, _, centres = clustered(10, 3, seed=3)
    ids = project_from_vectors(service, "cls", embeddings=emb, class_names=["a", "b", "c"], head=centres)
    service.labeling.decide_many("cls", image_ids=ids[:3], action="correct", label="b")
    with service.context.sessions.begin() as session:
        before = session.scalar(select(func.count()).select_from(Event))
    assert service.projects.class_usage("cls", "b").labels == 3
    assert service.projects.merge_classes("cls", "b", "c") == ClassesMerged(source="b", target="c", moved=3,
                                                                            archived=True)
    with service.context.sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == before + 3  # appended, none removed
        archived = session.scalar(select(LabelClass).where(LabelClass.name == "b"))
        assert archived is not None and archived.archived
    assert {c.label: c.labels for c in service.projects.info("cls").classes} == {"a": 0, "c": 3}
    assert service.projects.delete_class("cls", "a") == ClassDeleted(label="a", unlabeled=0, archived=False)
    with pytest.raises(Conflict, match="only class"):
        service.projects.delete_class("cls", "c")
    service.projects.add_class("cls", "d")
    with pytest.raises(Conflict, match="already has a class 'd'"):
        service.projects.rename_class("cls", "c", "d")
    assert service.projects.add_class("cls", "b").restored is True
    assert service.projects.delete_class("cls", "c").unlabeled == 3
    assert service.labeling.progress("cls").labeled == 0
    service.close()


# -- thumbnails --------------------------------------------------------------------------------


def test_thumbnails_are_cached_and_bad_files_named(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs", max_pixels=10**8)
    good = write_images(tmp_path / "img", 2)
    made = cache.path(sha256="ab" * 32, file_path=str(good[0]), size=256)
    assert made.is_file() and made.parent.name == "ab"
    assert cache.path(sha256="ab" * 32, file_path="/elsewhere.png", size=256) == made  # by content hash
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageError, match="bad.png"):
        cache.path(sha256="cd" * 32, file_path=str(bad), size=256)
    assert cache.prefetch([("ab" * 32, str(good[0])), ("ef" * 32, str(good[1]))], size=256) == [made, None]
    with pytest.raises(InvalidInput, match="size"):
        cache.target(sha256=None, file_path="x", size=100)
