"""Regions through the service layer: Segment Anything clicks to masks, instances, undo, region
proposals, precomputed embeddings. Real code paths with the tiny random-weight Sam and the tiny
open_clip model (embedding the project makes its zero-shot text head, so CLIP can name regions)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from core.config import Settings
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from core.segment.masks import mask_bbox, overlay_png, rle_decode
from core.service import Service
from core.store.repo import ClassSpec
from core.store.schema import Image as ImageRow
from core.store.schema import Instance, RegionEvent, RegionProposal
from core.usecases.regions import OVERLAY_SIDE, ProposalDecision, Regions

CLASSES = ("square", "circle", "background")
SIZES = ((64, 48), (56, 56), (40, 60))          # (width, height): distinct images, distinct sizes
CLICK = {"points": [[14, 16, 1]]}
LOOSE: dict[str, Any] = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "min_confidence": 0.0,
                         "points_per_side": 8}   # the tiny random Sam passes none of SAM's default filters
PNG = b"\x89PNG\r\n\x1a\n"


def tiny_region_settings(tmp: Path) -> Settings:
    return Settings(db=str(tmp / "regions.sqlite"), model="clipmark-tiny", pretrained=None, sam_model="tiny",
                    sam_checkpoint="random", media_dir=tmp / "media", batch_size=8, num_workers=0, user="tester")


def draw_shapes(folder: Path, shade: int = 0) -> list[Path]:
    """A red square and a blue disc on a light background (its shade makes each project's images
    distinct, so no test finds another's cached embeddings), one PNG per size."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (w, h) in enumerate(SIZES):
        image = Image.new("RGB", (w, h), (255, 255 - shade % 200, 255))
        draw = ImageDraw.Draw(image)
        draw.rectangle([4 + k, 6, 24, 26], fill="red")
        draw.ellipse([w - 24, h - 26, w - 4, h - 6], fill="blue")
        paths.append(folder / f"shapes{k}.png")
        image.save(paths[-1])
    return paths


@dataclass
class Shapes:
    """A project of three shape images on a service."""

    service: Service
    project: str
    ids: list[int]            # image ids, in SIZES order
    files: list[Path]

    @property
    def regions(self) -> Regions:
        return self.service.regions


def make_project(service: Service, folder: Path, name: str, *, shade: int = 0, embed: bool = True) -> Shapes:
    files = draw_shapes(folder / name, shade)
    service.projects.create(name, classes=[ClassSpec(c) for c in CLASSES])
    service.importing.images(name, files, progress=False)
    if embed:
        service.embedding.embed(name, progress=False)
    with service.context.sessions.begin() as session:
        by_path = {row.file_path: row.id for row in session.scalars(select(ImageRow))}
    return Shapes(service, name, [by_path[str(f)] for f in files], files)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny models run fastest on one thread; on a busy machine several threads spin-wait on each
    other (a click went from 10 ms to 350 ms on two loaded cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service (models loaded once) for the module; each test has its own project."""
    svc = Service(tiny_region_settings(tmp_path_factory.mktemp("regions")))
    yield svc
    svc.close()


@pytest.fixture()
def shapes(service: Service, tmp_path: Path) -> Shapes:
    shade = len(service.projects.names()) + 1
    return make_project(service, tmp_path, f"p{shade}", shade=shade)


def events(shapes: Shapes) -> list[tuple]:
    with shapes.service.context.sessions.begin() as session:
        project_id = shapes.service.context.project(session, shapes.project).id
        rows = session.scalars(select(RegionEvent).where(RegionEvent.project_id == project_id)
                               .order_by(RegionEvent.id))
        return [(e.id, e.action, e.instance_id, e.proposal_id, e.annotator_id, e.label_before_id, e.label_after_id,
                 e.undoes_event_id, e.created_at) for e in rows]


def reasons(shapes: Shapes) -> dict[int, str | None]:
    with shapes.service.context.sessions.begin() as session:
        return dict(session.execute(select(RegionEvent.id, RegionEvent.reason)).tuples().all())


def appended_one(shapes: Shapes, before: list[tuple]) -> list[tuple]:
    """The events now, checked to be the earlier ones, unchanged, plus one new row."""
    now = events(shapes)
    assert now[:len(before)] == before and len(now) == len(before) + 1
    return now


def stored_instance(service: Service, instance_id: int) -> Instance:
    with service.context.sessions.begin() as session:
        row = session.get(Instance, instance_id)
        assert row is not None
        session.expunge(row)
        return row


def proposal_rows(shapes: Shapes) -> list[RegionProposal]:
    with shapes.service.context.sessions.begin() as session:
        project_id = shapes.service.context.project(session, shapes.project).id
        query = select(RegionProposal).where(RegionProposal.project_id == project_id).order_by(RegionProposal.id)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


# -- click to mask -----------------------------------------------------------------------------


def test_segment_gives_three_small_masks_of_the_image_size(shapes: Shapes) -> None:
    result = shapes.regions.segment(shapes.project, shapes.ids[0], CLICK)
    width, height = SIZES[0]
    assert (result.width, result.height) == (width, height) and result.image_id == shapes.ids[0]
    assert len(result.masks) == 3 and 0 <= result.best < 3
    assert result.masks[result.best].area > 0
    assert result.prompts == {"points": [[14.0, 16.0, 1]], "box": None}
    for mask in result.masks:
        x, y, w, h = mask.bbox
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        assert 0 <= mask.area <= w * h
        assert mask.png.startswith(PNG) and len(mask.png) < 2000
        assert Image.open(io.BytesIO(mask.png)).size == (width, height)
    _, _, chosen, _ = shapes.regions.mask(shapes.project, shapes.ids[0], CLICK, None)
    assert chosen.shape == (height, width) and int(chosen.sum()) == result.masks[result.best].area


def test_a_negative_point_or_a_box_changes_the_masks(shapes: Shapes) -> None:
    def outcome(prompts: dict) -> list[tuple]:
        found = shapes.regions.segment(shapes.project, shapes.ids[0], prompts).masks
        return [(round(m.score, 5), m.area, m.png) for m in found]

    plain = outcome(CLICK)
    assert outcome(CLICK) == plain  # deterministic
    assert outcome({"points": [[14, 16, 1], [50, 30, 0]]}) != plain
    assert outcome({"points": [[14, 16, 1]], "box": [4, 6, 25, 27]}) != plain
    assert outcome({"box": [4, 6, 25, 27]}) != plain


@pytest.mark.parametrize(("prompts", "field"), [
    ({"points": [[65, 5, 1]]}, "points: .* outside the 64x48 image"),
    ({"points": [[-1, 5]]}, "points: .* outside"),
    ({"points": [[5, 49, 1]]}, "points: .* outside"),
    ({"points": [[5, 5, 2]]}, "points: .* not 1/0"),
    ({"points": [["left", 5]]}, "points: .* is not \\[x, y, 1\\|0\\]"),
    ({"points": [[5]]}, "points: "),
    ({"points": "5,5"}, "points: give a list"),
    ({"points": ["12"]}, "points: '12' is not"),
    ({"points": [[float("nan"), 5, 1]]}, "points: "),
    ({}, "points: click the image"),
    (None, "points: click the image"),
    ({"points": [], "box": None}, "points: click the image"),
    ({"box": [1, 2, 3]}, "box: "),
    ({"box": [70, 50, 90, 60]}, "box: .* empty inside the 64x48 image"),
    ({"box": [1, float("nan"), 20, 20]}, "box: "),
    (["not", "a", "dict"], "prompts: "),
])
def test_bad_prompts_name_the_field(shapes: Shapes, prompts: object, field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        shapes.regions.segment(shapes.project, shapes.ids[0], prompts)  # type: ignore[arg-type]


def test_unknown_or_foreign_images_and_projects_are_not_found(shapes: Shapes, tmp_path: Path) -> None:
    other_ids = make_project(shapes.service, tmp_path, f"{shapes.project}-other", embed=False).ids
    with pytest.raises(NotFound, match=f"image: no usable image #9999 in project '{shapes.project}'"):
        shapes.regions.segment(shapes.project, 9999, CLICK)
    with pytest.raises(NotFound, match=f"image: no usable image #{other_ids[0]} in project '{shapes.project}'"):
        shapes.regions.segment(shapes.project, other_ids[0], CLICK)
    with pytest.raises(NotFound, match="--project: no project named 'nope'"):
        shapes.regions.segment("nope", shapes.ids[0], CLICK)
    with pytest.raises(InvalidInput, match="image: "):
        shapes.regions.segment(shapes.project, "seven", CLICK)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="image: "):
        shapes.regions.instances(shapes.project, other_ids[0])


# -- the encoder runs once per image -----------------------------------------------------------


def test_two_clicks_run_the_encoder_once_and_a_new_service_finds_it_on_disk(shapes: Shapes) -> None:
    regions = shapes.regions
    before, files = regions.segmenter().encoder_runs, set(regions.cache.root.rglob("*.npz"))
    regions.segment(shapes.project, shapes.ids[0], CLICK)
    regions.segment(shapes.project, shapes.ids[0], {"points": [[40, 30, 1]]})
    assert regions.segmenter().encoder_runs == before + 1
    regions.segment(shapes.project, shapes.ids[1], CLICK)
    assert regions.segmenter().encoder_runs == before + 2
    assert len(set(regions.cache.root.rglob("*.npz")) - files) == 2
    again = Service(shapes.service.settings)
    try:
        first = regions.segment(shapes.project, shapes.ids[0], CLICK).masks
        assert again.regions.segment(shapes.project, shapes.ids[0], CLICK).masks == first
        assert again.regions.segmenter().encoder_runs == 0
    finally:
        again.close()


def test_warm_precomputes_so_the_first_click_runs_no_encoder(shapes: Shapes) -> None:
    regions = shapes.regions
    before = regions.segmenter().encoder_runs
    assert regions.warm(shapes.project, shapes.ids) == 3
    assert regions.precomputer.wait_idle(20)
    assert regions.segmenter().encoder_runs == before + 3 and not regions.precomputer.errors
    for image_id in shapes.ids:
        regions.segment(shapes.project, image_id, CLICK)
    assert regions.segmenter().encoder_runs == before + 3
    assert regions.warm(shapes.project, shapes.ids) == 0


# -- instances ---------------------------------------------------------------------------------


def test_add_instance_with_a_given_label_stores_the_mask_segment_showed(shapes: Shapes) -> None:
    regions = shapes.regions
    shown = regions.segment(shapes.project, shapes.ids[0], CLICK)
    top = regions.candidate_labels(shapes.project, shapes.ids[0], CLICK, 1, k=3)
    candidates = {c.label: c.confidence for c in top}
    added = regions.add_instance(shapes.project, shapes.ids[0], CLICK, choice=1, label="circle", annotator="ann")
    assert added.label == "circle" and added.source == "click" and not added.deleted
    assert added.label_confidence == pytest.approx(candidates["circle"])
    _, _, expected, score = regions.mask(shapes.project, shapes.ids[0], CLICK, 1)
    row = stored_instance(shapes.service, added.id)
    assert row.rle["size"] == [SIZES[0][1], SIZES[0][0]]
    assert np.array_equal(rle_decode(row.rle), expected)
    assert overlay_png(rle_decode(row.rle), max_side=OVERLAY_SIDE) == shown.masks[1].png
    assert row.area == int(expected.sum()) == shown.masks[1].area and row.bbox == mask_bbox(expected)
    assert row.score == pytest.approx(score) and row.prompts == shown.prompts
    assert row.segmenter_id == "tiny@random:0"
    assert regions.instances(shapes.project, shapes.ids[0]) == [added]
    assert regions.instances(shapes.project, shapes.ids[1]) == []


def test_add_instance_without_a_label_takes_clips_proposal(shapes: Shapes) -> None:
    regions = shapes.regions
    top = regions.candidate_labels(shapes.project, shapes.ids[1], CLICK, None, k=3)
    assert [t.label for t in top] and sorted(t.label for t in top) == sorted(CLASSES)
    assert sum(t.confidence for t in top) == pytest.approx(1.0, abs=1e-4)
    added = regions.add_instance(shapes.project, shapes.ids[1], CLICK)
    assert added.label == top[0].label
    assert added.label_confidence == pytest.approx(top[0].confidence)
    best = regions.segment(shapes.project, shapes.ids[1], CLICK).best
    assert np.array_equal(rle_decode(stored_instance(shapes.service, added.id).rle),
                          regions.mask(shapes.project, shapes.ids[1], CLICK, best)[2])


def test_add_instance_refuses_unknown_labels_bad_choices_and_empty_masks(shapes: Shapes) -> None:
    regions = shapes.regions
    with pytest.raises(InvalidInput, match="label: unknown class 'dog' \\(classes: square, circle, background\\)"):
        regions.add_instance(shapes.project, shapes.ids[0], CLICK, label="dog")
    with pytest.raises(InvalidInput, match="choice: 3 is not one of the 3 masks"):
        regions.add_instance(shapes.project, shapes.ids[0], CLICK, choice=3, label="square")
    with pytest.raises(InvalidInput, match="choice: expected a whole number"):
        regions.add_instance(shapes.project, shapes.ids[0], CLICK, choice=1.5, label="square")  # type: ignore[arg-type]
    sam = regions.segmenter().module
    sam.mask_threshold = 1e9  # every logit is below it: SAM's masks come out empty
    try:
        empty = regions.segment(shapes.project, shapes.ids[0], CLICK)
        assert [m.area for m in empty.masks] == [0, 0, 0] and empty.masks[0].bbox == (0.0,) * 4
        with pytest.raises(InvalidInput, match="mask: this mask is empty"):
            regions.add_instance(shapes.project, shapes.ids[0], CLICK, label="square")
    finally:
        del sam.mask_threshold  # back to Sam's class default
    assert regions.instances(shapes.project, shapes.ids[0]) == [] and events(shapes) == []


def test_delete_relabel_and_undo_each_action_with_an_append_only_history(shapes: Shapes) -> None:
    regions, image_id = shapes.regions, shapes.ids[0]
    added = regions.add_instance(shapes.project, image_id, CLICK, label="square", annotator="ann")
    with pytest.raises(InvalidInput, match="label: unknown class 'dog' \\(classes: square, circle, background\\)"):
        regions.relabel_instance(shapes.project, added.id, "dog", annotator="ann")
    history = events(shapes)
    assert [e[1] for e in history] == ["add"]
    regions.relabel_instance(shapes.project, added.id, "circle", annotator="ann")
    assert [i.label for i in regions.instances(shapes.project, image_id)] == ["circle"]
    history = appended_one(shapes, history)
    regions.delete_instance(shapes.project, added.id, annotator="ann")
    assert regions.instances(shapes.project, image_id) == []
    history = appended_one(shapes, history)
    with pytest.raises(NotFound, match=f"instance: no instance #{added.id}"):
        regions.relabel_instance(shapes.project, added.id, "square", annotator="ann")
    expected_undos = [("delete", ["circle"]), ("relabel", ["square"]), ("add", [])]
    for action, labels in expected_undos:
        done = regions.undo(shapes.project, annotator="ann")
        assert done.undone == action and done.instance_id == added.id and done.image_id == image_id
        assert [i.label for i in regions.instances(shapes.project, image_id)] == labels
        history = appended_one(shapes, history)
    assert [e[1] for e in history] == ["add", "relabel", "delete", "undo", "undo", "undo"]
    assert [e[7] for e in history[3:]] == [history[2][0], history[1][0], history[0][0]]
    with pytest.raises(Conflict, match="undo: you have no region action left"):
        regions.undo(shapes.project, annotator="ann")
    with pytest.raises(NotFound, match=f"instance: no instance #{added.id}"):
        regions.delete_instance(shapes.project, added.id, annotator="ann")  # its add was undone
    with pytest.raises(NotFound, match="instance: no instance #424242"):
        regions.delete_instance(shapes.project, 424242, annotator="ann")


def test_a_reason_is_kept_on_the_event_and_checked_like_a_description(shapes: Shapes) -> None:
    regions, image_id = shapes.regions, shapes.ids[0]
    added = regions.add_instance(shapes.project, image_id, CLICK, label="square", annotator="ann")
    before = events(shapes)
    for bad, message in (("x" * 501, "reason: 501 characters; at most 500"),
                         ("y" * 5000, "reason: 5,000 characters; at most 500"),
                         ("bad\x00byte", "reason: contains a control character U\\+0000"),
                         (42, "reason: expected text, got int")):
        with pytest.raises(InvalidInput, match=message):
            regions.relabel_instance(shapes.project, added.id, "circle", reason=bad, annotator="ann")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match=message):
            regions.delete_instance(shapes.project, added.id, reason=bad, annotator="ann")  # type: ignore[arg-type]
    assert events(shapes) == before
    regions.relabel_instance(shapes.project, added.id, "circle", reason="   ", annotator="ann")
    regions.delete_instance(shapes.project, added.id, reason="z" * 500 + "\n", annotator="ann")
    relabeled, deleted = events(shapes)[-2:]
    assert (reasons(shapes)[relabeled[0]], reasons(shapes)[deleted[0]]) == (None, "z" * 500)
    assert reasons(shapes)[before[0][0]] is None  # an add has no reason


def test_undo_never_undoes_another_users_action(shapes: Shapes) -> None:
    regions, image_id = shapes.regions, shapes.ids[0]
    mine = regions.add_instance(shapes.project, image_id, CLICK, label="square", annotator="ann")
    theirs = regions.add_instance(shapes.project, image_id, {"points": [[45, 30, 1]]}, label="circle",
                                  annotator="bob")
    regions.relabel_instance(shapes.project, mine.id, "background", annotator="bob")
    done = regions.undo(shapes.project, annotator="ann")
    assert done.undone == "add" and done.instance_id == mine.id
    assert [i.id for i in regions.instances(shapes.project, image_id)] == [theirs.id]
    with pytest.raises(Conflict):
        regions.undo(shapes.project, annotator="ann")
    assert regions.undo(shapes.project, annotator="bob").undone == "relabel"
    assert regions.undo(shapes.project, annotator="bob").instance_id == theirs.id
    assert regions.instances(shapes.project, image_id) == []


def test_team_mode_refuses_unknown_users(tmp_path: Path) -> None:
    service = Service(tiny_region_settings(tmp_path))
    try:
        shapes = make_project(service, tmp_path, "team")
        service.team.add_user("boss", role="admin", password="correct horse")
        unknown_user_is_refused(shapes)
    finally:
        service.close()


def unknown_user_is_refused(shapes: Shapes) -> None:
    regions = shapes.regions
    with pytest.raises(PermissionDenied, match="unknown user 'mallory'"):
        regions.add_instance(shapes.project, shapes.ids[0], CLICK, label="square", annotator="mallory")
    added = regions.add_instance(shapes.project, shapes.ids[0], CLICK, label="square", annotator="boss")
    for action in (lambda: regions.delete_instance(shapes.project, added.id, annotator="mallory"),
                   lambda: regions.relabel_instance(shapes.project, added.id, "circle", annotator="mallory"),
                   lambda: regions.undo(shapes.project, annotator="mallory"),
                   lambda: regions.propose(shapes.project, annotator="mallory"),
                   lambda: regions.decide_proposal(shapes.project, 1, accept=False, annotator="mallory")):
        with pytest.raises(PermissionDenied, match="unknown user 'mallory'"):
            action()
    assert regions.instances(shapes.project, shapes.ids[0]) == [added]


def test_annotators_may_not_edit_instances_someone_draws_on_an_image_they_hold(tmp_path: Path) -> None:
    """Region edits follow the lease rule of image decisions: while ann holds a live lease on the
    image, bob (annotator) may not relabel or delete her instance; a reviewer may, and the edit is a
    region event in the reviewer's name; once ann gives the image back, bob may too."""
    from core.usecases.team import leases

    service = Service(tiny_region_settings(tmp_path))
    try:
        shapes = make_project(service, tmp_path, "owned")
        for name, role in (("boss", "admin"), ("ann", "annotator"), ("bob", "annotator"), ("rita", "reviewer")):
            service.team.add_user(name, role=role, password="correct horse")
        image_id, regions = shapes.ids[0], shapes.regions
        with service.context.sessions.begin() as session:
            ann = service.context.annotator(session, "ann", "label")
            project_id = service.context.project(session, shapes.project).id
            assert leases.claim(session, project_id=project_id, image_id=image_id, user_id=ann.id) is not None
        drawn = regions.add_instance(shapes.project, image_id, CLICK, label="square", annotator="ann")
        before = events(shapes)
        refused = f"instance: #{drawn.id} was drawn by ann, who is labeling image #{image_id} now"
        with pytest.raises(Conflict, match=refused):
            regions.relabel_instance(shapes.project, drawn.id, "circle", annotator="bob")
        with pytest.raises(Conflict, match=refused):
            regions.delete_instance(shapes.project, drawn.id, annotator="bob")
        assert events(shapes) == before and regions.instances(shapes.project, image_id) == [drawn]
        why = "  the mark is a circle, see the guide  "
        assert regions.relabel_instance(shapes.project, drawn.id, "circle", reason=why,
                                        annotator="rita").label == "circle"
        edit = appended_one(shapes, before)[-1]
        with service.context.sessions.begin() as session:
            rita = service.context.annotator(session, "rita", "label")
        assert (edit[1], edit[2], edit[4]) == ("relabel", drawn.id, rita.id)
        assert reasons(shapes)[edit[0]] == "the mark is a circle, see the guide"  # who (above) and why
        mine = regions.add_instance(shapes.project, image_id, {"points": [[45, 30, 1]]}, label="circle",
                                    annotator="ann")
        assert regions.delete_instance(shapes.project, mine.id, annotator="ann").deleted  # her own
        with service.context.sessions.begin() as session:
            leases.release(session, image_id=image_id, user_id=ann.id)
        regions.undo(shapes.project, annotator="ann")  # her instance is back; she holds no lease now
        assert regions.delete_instance(shapes.project, mine.id, annotator="bob").deleted
    finally:
        service.close()


# -- proposals ---------------------------------------------------------------------------------


def test_propose_stores_named_proposals_queued_by_uncertainty_without_duplicates(shapes: Shapes) -> None:
    regions = shapes.regions
    assert regions.propose(shapes.project, points_per_side=8).proposed == 0  # SAM's own thresholds keep none
    weak = regions.propose(shapes.project, **{**LOOSE, "min_confidence": 1.0})
    assert weak.proposed == 0 and weak.weak > 0 and weak.images == 3 and proposal_rows(shapes) == []
    first = regions.propose(shapes.project, **LOOSE)
    assert first.proposed == weak.weak and first.weak == 0 and first.errors == ()
    rows = proposal_rows(shapes)
    assert len(rows) == first.proposed and {r.image_id for r in rows} <= set(shapes.ids)
    for row in rows:
        assert row.probs is not None and row.label_ids is not None
        probs = np.frombuffer(row.probs, dtype=np.float32)
        assert probs.shape == (3,) and probs.sum() == pytest.approx(1.0, abs=1e-4) and len(row.label_ids) == 3
        assert row.label_ids[int(np.argmax(probs))] == row.label_id and row.confidence == pytest.approx(probs.max())
        top2 = np.sort(probs)[-2:]
        assert row.uncertainty == pytest.approx(1 - (top2[1] - top2[0]), abs=1e-6) and row.status == "open"
        assert row.model_id == "clipmark-tiny@random:0" and row.segmenter_id == "tiny@random:0"
        assert rle_decode(row.rle).sum() == row.area > 0
    queue = regions.next_proposals(shapes.project, limit=100)
    assert [q.uncertainty for q in queue] == sorted((r.uncertainty for r in rows), reverse=True)
    top = queue[0].top
    assert len(top) == 3 and top[0].confidence >= top[1].confidence >= top[2].confidence
    again = regions.propose(shapes.project, **LOOSE)
    assert again.proposed == 0 and again.duplicates >= first.proposed
    assert len(proposal_rows(shapes)) == len(rows)


def test_accept_reject_are_remembered_and_undoable(shapes: Shapes) -> None:
    regions = shapes.regions
    assert regions.propose(shapes.project, **LOOSE).proposed >= 2
    first, second = regions.next_proposals(shapes.project, limit=2)
    accepted = regions.decide_proposal(shapes.project, first.id, accept=True, annotator="ann")
    instance = accepted.instance
    assert accepted.status == "accepted" and instance.source == "proposal"
    assert instance.label == first.top[0].label
    assert instance.label_confidence == pytest.approx(first.top[0].confidence)
    assert instance in regions.instances(shapes.project, first.image_id)
    assert stored_instance(shapes.service, instance.id).rle == first.rle
    assert regions.decide_proposal(shapes.project, second.id, accept=False, annotator="ann") == ProposalDecision(
        proposal=second.id, status="rejected")
    open_ids = [q.id for q in regions.next_proposals(shapes.project, limit=100)]
    assert first.id not in open_ids and second.id not in open_ids
    with pytest.raises(Conflict, match=f"proposal: #{first.id} was already accepted"):
        regions.decide_proposal(shapes.project, first.id, accept=False, annotator="ann")
    with pytest.raises(NotFound, match="proposal: no proposal #9999"):
        regions.decide_proposal(shapes.project, 9999, accept=True, annotator="ann")
    rerun = regions.propose(shapes.project, **LOOSE)
    assert rerun.proposed == 0 and {r.status for r in proposal_rows(shapes) if r.id == second.id} == {
        "rejected"}
    assert regions.undo(shapes.project, annotator="ann").undone == "reject_proposal"
    assert regions.undo(shapes.project, annotator="ann").undone == "accept_proposal"
    assert regions.instances(shapes.project, first.image_id) == []
    open_ids = [q.id for q in regions.next_proposals(shapes.project, limit=100)]
    assert first.id in open_ids and second.id in open_ids
    relabeled = regions.decide_proposal(shapes.project, first.id, accept=True, label="background", annotator="ann")
    assert relabeled.instance.label == "background"
    probs = dict(zip((t.label for t in first.top), (t.confidence for t in first.top), strict=True))
    assert relabeled.instance.label_confidence == pytest.approx(probs["background"])


def test_a_bad_image_is_reported_and_the_run_goes_on(shapes: Shapes) -> None:
    shapes.files[1].unlink()
    summary = shapes.regions.propose(shapes.project, **LOOSE)
    assert summary.images == 3 and summary.proposed > 0
    assert len(summary.errors) == 1 and summary.errors[0]["file"] == f"image #{shapes.ids[1]}"
    assert "no such file" in summary.errors[0]["reason"]
    assert {r.image_id for r in proposal_rows(shapes)} <= {shapes.ids[0], shapes.ids[2]}
    with pytest.raises(InvalidInput, match="min-confidence"):
        shapes.regions.propose(shapes.project, min_confidence=1.5)
    with pytest.raises(InvalidInput, match="--pred-iou-thresh: 2.0 is not between 0 and 1"):
        shapes.regions.propose(shapes.project, pred_iou_thresh=2.0)
    with pytest.raises(InvalidInput, match="--stability-score-thresh: -0.1 is not between 0 and 1"):
        shapes.regions.propose(shapes.project, stability_score_thresh=-0.1)
    with pytest.raises(InvalidInput, match="--points-per-side: 0 is not an integer >= 1"):
        shapes.regions.propose(shapes.project, points_per_side=0)


def test_proposals_without_a_text_head_are_queued_by_sams_doubt(service: Service, tmp_path: Path) -> None:
    shapes = make_project(service, tmp_path, "no-clip", shade=150, embed=False)
    summary = shapes.regions.propose(shapes.project, **{**LOOSE, "min_confidence": 1.0})
    assert summary.proposed > 0 and summary.weak == 0  # no CLIP: nothing to call weak
    rows = proposal_rows(shapes)
    for row in rows:
        assert row.probs is None and row.label_id is None and row.model_id is None
        assert row.uncertainty == pytest.approx(1 - min(max(row.predicted_iou, 0.0), 1.0))
    assert shapes.regions.next_proposals(shapes.project, limit=1)[0].top == ()
    with pytest.raises(InvalidInput, match="label: CLIP has no proposal"):
        shapes.regions.decide_proposal(shapes.project, rows[0].id, accept=True)
    assert shapes.regions.decide_proposal(shapes.project, rows[0].id, accept=True, label="circle").status == "accepted"


# -- embeddings ahead of time ------------------------------------------------------------------


def test_embed_all_reports_computed_cached_and_errors(shapes: Shapes) -> None:
    regions = shapes.regions
    before = regions.segmenter().encoder_runs
    shapes.files[2].unlink()
    report = regions.embed_all(shapes.project, image_ids=shapes.ids[:2])
    assert (report.images, report.computed, report.cached, report.errors) == (2, 2, 0, ())
    report = regions.embed_all(shapes.project)
    assert (report.images, report.computed, report.cached) == (3, 0, 2)
    assert report.model_id == "tiny@random:0"
    assert [e["file"] for e in report.errors] == [f"image #{shapes.ids[2]}"]
    assert "no such file" in report.errors[0]["reason"]
    assert regions.segmenter().encoder_runs == before + 2


def test_clip_names_the_masked_crop_with_the_zero_shot_head(shapes: Shapes) -> None:
    """The proposed classes are open_clip's own scores of the region's crop of the display copy
    (outside the mask filled with CLIP's mean colour) against the project's text head, computed here
    independently."""
    import torch
    from PIL import Image

    from core.segment.masks import masked_crop
    from core.store.schema import LabelClass

    service, project, image_id = shapes.service, shapes.project, shapes.ids[0]
    image, _, mask, _ = shapes.regions.mask(project, image_id, CLICK, None)
    top = shapes.regions.candidate_labels(project, image_id, CLICK, None, k=len(CLASSES))
    with service.context.read_sessions.begin() as session:
        state = service.states.get(session, service.context.project(session, project))
    model = service.models.load(service.models.spec())
    display_copy = service.workspace.thumbs.path(sha256=image.sha256, file_path=image.file_path, size=1024)
    with Image.open(display_copy) as display:  # images this small keep their size
        crop = masked_crop(np.asarray(display.convert("RGB")), mask)
    with torch.inference_mode():
        features = model.module.encode_image(model.preprocess(Image.fromarray(crop))[None])
    features = torch.nn.functional.normalize(features.float(), dim=-1).numpy()
    probs = torch.softmax(torch.from_numpy(state.logit_scale * features @ state.head.T), dim=-1).numpy()[0]
    with service.context.sessions.begin() as session:
        names = {c.id: c.name for c in session.scalars(select(LabelClass))}
    expected = {names[label_id]: float(p) for label_id, p in zip(state.label_ids, probs, strict=True)}
    assert {e.label for e in top} == set(CLASSES)
    for entry in top:
        assert entry.confidence == pytest.approx(expected[entry.label], abs=1e-4)
    assert [e.confidence for e in top] == sorted((e.confidence for e in top), reverse=True)
