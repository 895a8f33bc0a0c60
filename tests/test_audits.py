"""Blind random audits (held out of training), the honest estimate and "accept the rest", on real CLIP
embeddings (Pets)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from core.config import Settings
from core.errors import Conflict, InvalidInput, PermissionDenied
from core.service import Service
from core.store.schema import CurrentLabel, Event, ServedItem
from core.usecases.results import jsonable
from tests.helpers import load_npz, project_from_vectors


@pytest.fixture()
def pets(embeddings_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    emb, labels, names, head = load_npz(embeddings_dir / "pets25-val-clip-vitb32.npz")
    service = Service(Settings(db=str(tmp_path / "audits.sqlite")))
    ids = project_from_vectors(service, "pets", embeddings=emb, class_names=names, head=head)
    yield service, {i: names[y] for i, y in zip(ids, labels, strict=True)}
    service.close()


def _label(service: Service, truth: dict[int, str], n: int) -> None:
    """Label n items the queue serves with their true class (audits among them)."""
    done = 0
    while done < n:
        for item in service.labeling.next_items("pets", annotator="ann", n=min(5, n - done)):
            service.labeling.decide("pets", image_id=item.image_id, action="correct", label=truth[item.image_id],
                                    annotator="ann")
            done += 1


def _served(service: Service) -> list[ServedItem]:
    with service.context.sessions.begin() as session:
        rows = list(session.scalars(select(ServedItem).order_by(ServedItem.id)))
        session.expunge_all()
    return rows


def test_audits_are_served_blind_and_recorded(pets) -> None:  # type: ignore[no-untyped-def]
    service, _ = pets
    assert service.labeling.set_audit_share("pets", 0.3) == 0.3
    items = service.labeling.next_items("pets", annotator="ann", n=40, k=3)
    served = {row.image_id: row for row in _served(service)}
    assert set(served) == {item.image_id for item in items}
    audits = {i for i, row in served.items() if row.audit}
    assert 4 <= len(audits) <= 25
    assert all(row.pool_size == 497 and row.label_id is not None and row.model_version for row in served.values())
    shapes = {tuple(jsonable(item)) for item in items}
    assert len(shapes) == 1  # an audit's payload has exactly the others' fields
    reasons = {i.reason.strategy for i in items if i.image_id not in audits}
    assert {i.reason.strategy for i in items if i.image_id in audits} <= reasons


def test_audit_draws_are_uniform_over_the_unlabeled_pool(pets) -> None:  # type: ignore[no-untyped-def]
    service, _ = pets
    state = service.labeling.state("pets")
    state.audit_share = 1.0
    ranked = [r for r in state.queue if not r.audit][:40]
    counts: Counter[int] = Counter()
    for seed in range(500):
        state.project_id = seed  # the audit rng is seeded by project and label count
        counts.update(r.image_id for r in state._with_audits(ranked) if r.audit)
    pool = state.image_ids[state.pool_rows()].tolist()
    assert set(counts) <= set(pool) and len(counts) == len(pool)
    observed = np.array([counts[i] for i in pool], dtype=float)
    expected = 500 * 40 / len(pool)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < len(pool) + 4 * np.sqrt(2 * len(pool))  # within 4 sd of a chi-square with |pool| dof


def test_no_audits_at_share_zero(pets) -> None:  # type: ignore[no-untyped-def]
    service, _ = pets
    service.labeling.set_audit_share("pets", 0)
    service.labeling.next_items("pets", annotator="ann", n=60)
    assert not any(row.audit for row in _served(service))
    with pytest.raises(InvalidInput, match="audit_share"):
        service.labeling.set_audit_share("pets", 1.5)


def test_estimate_covers_the_pools_true_accuracy(pets) -> None:  # type: ignore[no-untyped-def]
    service, truth = pets
    service.labeling.set_audit_share("pets", 0.5)
    _label(service, truth, 60)
    found = service.labeling.estimate("pets")
    state = service.labeling.state("pets")
    pool = state.pool_rows()
    names = [state.class_names[i] for i in state.label_ids]
    right = [names[j] == truth[int(i)] for i, j in zip(state.image_ids[pool], state.probs[pool].argmax(axis=1),
                                                       strict=True)]
    assert found.pool == pool.size == 497 - 60
    audited = [state.position[r.image_id] for r in _served(service) if r.audit]
    assert np.all(state.labels[audited] >= 0) and np.all(state.training_labels()[audited] == -1)  # held out
    assert found.accuracy.answered == sum(r.audit for r in _served(service)) >= 15
    assert found.accuracy.low <= float(np.mean(right)) <= found.accuracy.high
    assert found.history and found.history[-1].audits == found.accuracy.answered
    assert found.saved and found.saved[-1].labels == 60 - found.accuracy.answered
    assert found.saved[-1].fixed > found.saved[-1].random_high  # the queue finds errors faster than random


def test_a_skipped_audit_widens_the_interval(pets) -> None:  # type: ignore[no-untyped-def]
    service, truth = pets
    service.labeling.set_audit_share("pets", 0.5)
    _label(service, truth, 20)
    before = service.labeling.estimate("pets").accuracy
    service.labeling.set_audit_share("pets", 1.0)  # every item served now is an audit
    audit = service.labeling.next_items("pets", annotator="ann", n=1)[0].image_id
    assert [r.audit for r in _served(service) if r.image_id == audit] == [True]
    service.labeling.decide("pets", image_id=audit, action="skip", annotator="ann")
    after = service.labeling.estimate("pets").accuracy
    assert after.skipped == 1 and after.answered == before.answered and after.value == before.value
    assert after.low < before.low and after.high >= before.high


def test_accept_rest_is_one_undoable_bulk_action_exported_as_model_accepted(pets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, truth = pets
    service.labeling.set_audit_share("pets", 0.5)
    _label(service, truth, 20)
    plan = service.labeling.accept_rest_preview("pets", min_confidence=0.9)
    state = service.labeling.state("pets")
    assert plan.images == int((state.probs[state.pool_rows()].max(axis=1) >= 0.9).sum()) > 0
    done = service.labeling.accept_rest("pets", min_confidence=0.9, annotator="ann")
    assert done.images == plan.images and done.accuracy == plan.accuracy
    with service.context.sessions.begin() as session:
        events = session.execute(select(Event.action, Event.batch_id, func.count()).where(
            Event.source == "model-accepted").group_by(Event.action, Event.batch_id)).all()
    assert events == [("accept", done.batch_id, done.images)]
    assert service.labeling.progress("pets").labeled == 20 + done.images
    queued = {i.image_id for i in service.labeling.next_items("pets", annotator="ann", n=100)}
    assert not queued & _current(service, "model-accepted")
    report = service.exporting.export("pets", fmt="csv", out=tmp_path / "all", include="model")
    rows = list(csv.DictReader((tmp_path / "all" / "labels.csv").open()))
    accepted = [r for r in rows if r["source"] == "model-accepted"]
    assert len(accepted) == done.images and report.counts["by_source"]["model-accepted"] == done.images
    names = [state.class_names[i] for i in state.label_ids]
    assert all(r["label"] == names[int(state.probs[state.position[int(r["image_id"])]].argmax())] for r in accepted)
    service.exporting.export("pets", fmt="csv", out=tmp_path / "human", include="human", status="labeled")
    human = list(csv.DictReader((tmp_path / "human" / "labels.csv").open()))
    assert len(human) == 20 and {r["source"] for r in human} == {"human"}

    undone = service.labeling.undo("pets", annotator="ann")
    assert undone.images == done.images
    assert not _current(service, "model-accepted")
    assert service.labeling.progress("pets").labeled == 20
    service.labeling.undo("pets", annotator="ann")  # the next undo is the latest human decision again
    assert service.labeling.progress("pets").labeled == 19


def _current(service: Service, source: str) -> set[int]:
    with service.context.sessions.begin() as session:
        return set(session.scalars(select(CurrentLabel.image_id).where(CurrentLabel.source == source)))


def test_accept_rest_refuses_a_target_it_cannot_show_and_needs_an_admin(pets) -> None:  # type: ignore[no-untyped-def]
    service, truth = pets
    _label(service, truth, 10)
    with pytest.raises(InvalidInput, match="target_accuracy: no confidence threshold reaches 99.99%"):
        service.labeling.accept_rest("pets", target_accuracy=0.9999)
    with pytest.raises(InvalidInput, match="nothing to accept"):
        service.labeling.accept_rest("pets", min_confidence=1.0)
    with pytest.raises(InvalidInput, match="min_confidence"):
        service.labeling.accept_rest_preview("pets", min_confidence=2.0)
    service.team.add_user("boss", role="admin", password="correct horse")
    service.team.add_user("anna", role="annotator", password="correct horse", annotator="boss")
    with pytest.raises(PermissionDenied, match="manage projects"):
        service.labeling.accept_rest("pets", annotator="anna")
    with pytest.raises(InvalidInput, match="audit_share"):
        service.labeling.set_audit_share("pets", None)  # type: ignore[arg-type]
    service.team.add_user("lead", role="admin", password="correct horse", annotator="boss")
    done = service.labeling.accept_rest("pets", min_confidence=0.5, annotator="lead")
    service.team.set_role("lead", "annotator", annotator="boss")
    with pytest.raises(PermissionDenied, match="manage projects"):  # a demoted admin cannot reverse the batch
        service.labeling.undo("pets", annotator="lead")
    service.team.set_role("lead", "admin", annotator="boss")
    assert service.labeling.undo("pets", annotator="lead").images == done.images


def test_cli_estimate_accept_rest_and_audit_share(pets, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from core.cli import main

    service, truth = pets
    db = ["--db", service.settings.db, "--project", "pets"]
    assert main(["audit-share", *db, "0.5"]) == 0
    _label(Service(Settings(db=service.settings.db)), truth, 20)
    capsys.readouterr()
    assert main(["estimate", *db]) == 0
    assert "pseudo-labels right (95% interval" in capsys.readouterr().out
    assert main(["estimate", *db, "--json"]) == 0
    assert '"answered"' in capsys.readouterr().out
    assert main(["accept-rest", *db, "--min-confidence", "0.95", "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("accept ") and "estimated accuracy" in out and '"batch_id"' in out
    assert main(["accept-rest", *db, "--target-accuracy", "0.9999", "--yes"]) == 2
    assert "no confidence threshold reaches 99.99%" in capsys.readouterr().err


def test_after_accept_the_rest_the_estimate_speaks_for_the_pool_left(pets) -> None:  # type: ignore[no-untyped-def]
    """Accepting the confident pseudo-labels leaves the less confident ones: the audits at or above the
    batch's threshold stand for the accepted images, so the estimate of what remains uses the others
    only (the whole-pool estimate had stood unchanged while the remaining accuracy fell); undoing
    the batch counts them again."""
    service, truth = pets
    service.labeling.set_audit_share("pets", 1.0)
    _label(service, truth, 120)
    before = service.labeling.estimate("pets").accuracy
    state = service.labeling.state("pets")
    audits = [r.image_id for r in _served(service) if r.audit]
    confident = {i for i in audits if float(state.probs[state.position[i]].max()) >= 0.9}
    assert 0 < len(confident) < len(audits) == before.answered
    service.labeling.accept_rest("pets", min_confidence=0.9, annotator="ann")
    after = service.labeling.estimate("pets").accuracy
    assert after.answered == before.answered - len(confident)
    state = service.labeling.state("pets")
    pool = state.pool_rows()
    names = [state.class_names[i] for i in state.label_ids]
    remaining = np.mean([names[j] == truth[int(i)] for i, j in
                         zip(state.image_ids[pool], state.probs[pool].argmax(axis=1), strict=True)])
    assert after.low <= remaining <= after.high
    assert after.value is not None and before.value is not None and after.value < before.value
    second = service.labeling.accept_rest_preview("pets", min_confidence=0.5)
    assert second.accuracy.answered == sum(1 for i in audits if i not in confident
                                           and float(state.probs[state.position[i]].max()) >= 0.5)
    service.labeling.undo("pets", annotator="ann")
    assert service.labeling.estimate("pets").accuracy.answered == before.answered


def test_accept_rest_accepts_only_the_count_that_was_confirmed(pets) -> None:  # type: ignore[no-untyped-def]
    """The count a person confirmed travels with the confirmation: after someone labels in between,
    the batch is refused whole (nothing accepted) and a fresh preview's count goes through."""
    service, truth = pets
    service.labeling.set_audit_share("pets", 0.5)
    _label(service, truth, 20)
    plan = service.labeling.accept_rest_preview("pets", min_confidence=0.5)
    _label(service, truth, 5)  # another annotator, meanwhile
    with pytest.raises(Conflict, match="nothing was accepted; preview again"):
        service.labeling.accept_rest("pets", min_confidence=plan.min_confidence, expect_images=plan.images,
                                     annotator="ann")
    assert not _current(service, "model-accepted")
    again = service.labeling.accept_rest_preview("pets", min_confidence=0.5)
    done = service.labeling.accept_rest("pets", min_confidence=again.min_confidence, expect_images=again.images,
                                        annotator="ann")
    assert done.images == again.images == len(_current(service, "model-accepted"))
    with pytest.raises(InvalidInput, match="expect_images"):
        service.labeling.accept_rest("pets", expect_images=0, annotator="ann")


def test_the_audit_share_is_the_share_of_items_served(pets) -> None:  # type: ignore[no-untyped-def]
    """An audit takes its slot's place (the slot's item is ranked again later): at share 1 every item
    served is an audit, at 0.5 about half (an audit put in front of its slot's item made it s/(1+s))."""
    service, truth = pets
    service.labeling.set_audit_share("pets", 1.0)
    _label(service, truth, 10)
    assert [r.audit for r in _served(service)] == [True] * 10
    service.labeling.set_audit_share("pets", 0.5)
    _label(service, truth, 120)
    share = np.mean([r.audit for r in _served(service)[10:]])
    assert 0.38 <= share <= 0.62, share
    assert len(service.labeling.state("pets").next(1000)) == 497 - 130  # every unlabeled image stays queued


def test_undoing_a_batch_gives_back_the_skips_it_took(pets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A skipped image that accept-the-rest took is skipped again after the undo, live as after a
    restart (the live server had forgotten the skip: a narrower interval than the restarted one)."""
    service, truth = pets
    service.labeling.set_audit_share("pets", 1.0)
    _label(service, truth, 10)
    skipped = service.labeling.next_items("pets", annotator="ann", n=1)[0].image_id
    service.labeling.decide("pets", image_id=skipped, action="skip", annotator="ann")
    service.labeling.accept_rest("pets", min_confidence=0.0, annotator="ann")
    service.labeling.undo("pets", annotator="ann")
    live = service.labeling.estimate("pets").accuracy
    assert live.skipped == 1 and skipped in service.labeling.state("pets").skipped
    again = Service(Settings(db=service.context.settings.db))
    try:
        assert again.labeling.estimate("pets").accuracy == live
    finally:
        again.close()


def test_exported_accepted_labels_name_the_classifier_that_proposed_them(pets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Provenance: a model-accepted row carries the classifier version its batch recorded, not the
    latest prediction run's (made after more labels by a later classifier)."""
    service, truth = pets
    _label(service, truth, 20)
    plan = service.labeling.accept_rest_preview("pets", min_confidence=0.9)
    service.labeling.accept_rest("pets", min_confidence=0.9, annotator="ann")
    _label(service, truth, 3)
    service.embedding.predict("pets")
    state = service.labeling.state("pets")
    assert plan.model_version and state.classifier is not None and state.classifier.version != plan.model_version
    service.exporting.export("pets", fmt="csv", out=tmp_path / "out", include="model")
    rows = list(csv.DictReader((tmp_path / "out" / "labels.csv").open()))
    accepted = {r["model_version"] for r in rows if r["source"] == "model-accepted"}
    assert accepted == {plan.model_version}
    assert {r["model_version"] for r in rows if r["source"] == "model"} != {plan.model_version}
