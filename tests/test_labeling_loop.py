"""The labeling loop on real CLIP embeddings: queue, decisions, undo, restart, adaptation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, func, select

from core.config import Settings
from core.errors import Conflict, InvalidInput, NotFound
from core.service import Service
from core.store.schema import Event, PredictionRun
from tests.helpers import load_npz, project_from_vectors


@pytest.fixture()
def pets(embeddings_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    emb, labels, names, head = load_npz(embeddings_dir / "pets25-val-clip-vitb32.npz")
    db = str(tmp_path / "loop.sqlite")
    service = Service(Settings(db=db))
    ids = project_from_vectors(service, "pets", embeddings=emb, class_names=names, head=head)
    truth = {i: names[y] for i, y in zip(ids, labels, strict=True)}
    yield service, truth, db, emb, labels, names, head
    service.close()


def test_decision_is_durable_and_never_comes_back(pets) -> None:  # type: ignore[no-untyped-def]
    service, truth, db, *_ = pets
    first = service.labeling.next_items("pets", annotator="ann", n=3, k=3)
    assert len(first) == 3 and first[0].reason.strategy in ("error_seeking", "margin_diverse", "margin")
    assert all(len(item.top) == 3 for item in first)
    image_id = first[0].image_id
    result = service.labeling.decide("pets", image_id=image_id, action="correct", label=truth[image_id],
                                     annotator="ann")
    other = Service(Settings(db=db))  # a second process's view: the event is already committed
    with other.context.sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 1
    other.close()
    assert result.decision.model_version in ("zero-shot", "adapted-n1")
    queued = [item.image_id for item in service.labeling.next_items("pets", annotator="ann", n=60)]
    assert image_id not in queued


def test_accept_takes_the_proposal_and_skip_goes_to_the_back(pets) -> None:  # type: ignore[no-untyped-def]
    service, *_ = pets
    item = service.labeling.next_items("pets", annotator="ann", n=1, k=1)[0]
    result = service.labeling.decide("pets", image_id=item.image_id, action="accept", annotator="ann")
    assert result.decision.label == item.top[0].label
    skipped = service.labeling.next_items("pets", annotator="ann", n=1)[0].image_id
    service.labeling.decide("pets", image_id=skipped, action="skip", annotator="ann")
    order = [r.image_id for r in service.labeling.state("pets").next(1000)]  # the whole queue (next_items: 100 at most)
    assert order[-1] == skipped and len(order) == 497 - 1


def test_queue_order_survives_a_restart(pets) -> None:  # type: ignore[no-untyped-def]
    service, truth, db, *_ = pets
    for _ in range(5):
        image_id = service.labeling.next_items("pets", annotator="ann", n=1)[0].image_id
        service.labeling.decide("pets", image_id=image_id, action="correct", label=truth[image_id], annotator="ann")
    skipped = service.labeling.next_items("pets", annotator="ann", n=1)[0].image_id
    service.labeling.decide("pets", image_id=skipped, action="skip", annotator="ann")
    before = [i.image_id for i in service.labeling.next_items("pets", annotator="ann", n=20)]
    restarted = Service(Settings(db=db))
    assert [i.image_id for i in restarted.labeling.next_items("pets", annotator="ann", n=20)] == before
    restarted.close()


def test_undo_restores_and_is_per_user(pets) -> None:  # type: ignore[no-untyped-def]
    service, truth, *_ = pets
    image_id = service.labeling.next_items("pets", annotator="ann", n=1)[0].image_id
    service.labeling.decide("pets", image_id=image_id, action="correct", label=truth[image_id], annotator="ann")
    undone = service.labeling.undo("pets", annotator="ann")
    assert undone.image_id == image_id and undone.label is None
    assert image_id in [i.image_id for i in service.labeling.next_items("pets", annotator="ann", n=100)]
    with pytest.raises(Conflict):
        service.labeling.undo("pets", annotator="ann")
    service.labeling.decide("pets", image_id=image_id, action="correct", label=truth[image_id], annotator="ann")
    other_label = next(n for n in sorted(set(truth.values())) if n != truth[image_id])
    with pytest.raises(Conflict, match="assigned to someone else"):  # bob may not relabel ann's item
        service.labeling.decide("pets", image_id=image_id, action="correct", label=other_label, annotator="bob")
    service.team.resolve("pets", image_id=image_id, label=other_label, annotator="rev")  # a reviewer may
    with pytest.raises(Conflict, match="nobody else's work"):
        service.labeling.undo("pets", annotator="ann")


def test_bad_decisions_name_the_field(pets) -> None:  # type: ignore[no-untyped-def]
    service, *_ = pets
    image_id = service.labeling.next_items("pets", annotator="ann", n=1)[0].image_id
    with pytest.raises(NotFound, match="label: 'zebra' is not a class"):
        service.labeling.decide("pets", image_id=image_id, action="correct", label="zebra", annotator="ann")
    with pytest.raises(InvalidInput, match="action: unknown 'approve'"):
        service.labeling.decide("pets", image_id=image_id, action="approve", label=None, annotator="ann")
    with pytest.raises(NotFound, match="image_id"):
        service.labeling.decide("pets", image_id=10**9, action="skip", annotator="ann")


def test_corrections_improve_the_pseudo_labels(pets) -> None:  # type: ignore[no-untyped-def]
    service, truth, db, emb, labels, names, head = pets
    zero = service.embedding.predict("pets")
    assert zero.model_version == "zero-shot"
    for _ in range(40):
        image_id = service.labeling.next_items("pets", annotator="ann", n=1)[0].image_id
        service.labeling.decide("pets", image_id=image_id, action="correct", label=truth[image_id], annotator="ann")
    adapted = service.embedding.predict("pets")
    assert adapted.model_version.startswith("adapted-n40") or adapted.model_version == "zero-shot"
    state = service.labeling.state("pets")
    unlabeled = state.labels < 0
    truth_idx = np.array([names.index(truth[int(i)]) for i in state.image_ids])
    zs_probs = (100.0 * emb @ head.T)
    zs_acc = float((zs_probs.argmax(1)[unlabeled] == truth_idx[unlabeled]).mean())
    now_acc = float((state.probs.argmax(1)[unlabeled] == truth_idx[unlabeled]).mean())
    assert now_acc >= zs_acc - 1e-9
    with service.context.sessions.begin() as session:
        versions = list(session.scalars(select(PredictionRun.model_version).order_by(PredictionRun.id)))
    assert versions[0] == "zero-shot" and versions[-1] == adapted.model_version


def test_flipped_labels_are_suspected(pets) -> None:  # type: ignore[no-untyped-def]
    service, truth, db, emb, labels, names, head = pets
    ids = sorted(truth)[:120]
    flipped = set(ids[:4])
    given = {i: next(n for n in names if n != truth[i]) if i in flipped else truth[i] for i in ids}
    for label in sorted(set(given.values())):
        batch = [i for i in ids if given[i] == label]
        service.labeling.decide_many("pets", image_ids=batch, action="correct", label=label, annotator="ann")
    report = service.labeling.suspects("pets")
    top = {s.image_id for s in report.suspects[:8]}
    assert len(flipped & top) >= 3
    first = report.suspects[0]
    assert first.label != first.suggested and first.score > 0


def test_background_refit_reaches_the_same_model_and_queue(pets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, truth, db, *_ = pets
    web = Service(Settings(db=db), background_refit=True)
    for _ in range(6):
        image_id = web.labeling.next_items("pets", annotator="ann", n=1)[0].image_id
        result = web.labeling.decide("pets", image_id=image_id, action="correct", label=truth[image_id],
                                     annotator="ann")
        assert image_id not in [i.image_id for i in web.labeling.next_items("pets", annotator="ann", n=50)]
    assert web.wait_for_refits(60)
    assert result.decision.event_id > 0
    fresh = Service(Settings(db=db))  # a synchronous rebuild from the store
    assert web.labeling.state("pets").classifier.version == fresh.labeling.state("pets").classifier.version
    ours = [i.image_id for i in web.labeling.next_items("pets", annotator="ann", n=10)]
    assert ours == [i.image_id for i in fresh.labeling.next_items("pets", annotator="ann", n=10)]
    web.close()
    fresh.close()


def test_a_web_decision_is_one_call_of_at_most_eight_statements(pets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Decide and hand out the view's next four items: one transaction, its statements counted."""
    _, truth, db, *_ = pets
    web = Service(Settings(db=db), background_refit=True)
    counted: list[str] = []
    event.listen(web.context.engine, "before_cursor_execute", lambda _c, _k, sql, *_: counted.append(sql))
    items = web.labeling.next_items("pets", annotator="ann", n=4, k=5)
    figures = []
    for _ in range(5):
        counted.clear()
        image_id = items[0].image_id
        decided = web.labeling.decide("pets", image_id=image_id, action="correct", label=truth[image_id],
                                      annotator="ann", next_n=4, k=5)
        figures.append(len(counted))
        assert decided.decision.image_id == image_id and len(decided.next) == 4
        assert image_id not in [i.image_id for i in decided.next]
        items = list(decided.next)
        web.wait_for_refits(60)
    print(f"SQL statements per web decision (decide + next 4): {figures}")
    assert max(figures) <= 8, counted
    web.close()


@pytest.mark.postgres
def test_decisions_on_postgresql_lock_the_image_in_the_first_query(tmp_path: Path) -> None:
    """The decision's first query reads annotator, project and image (FOR UPDATE OF images) at once."""
    from tests import pg
    from tests.webapp.test_core_views import clustered

    reason = pg.available()
    if reason is not None:
        pytest.skip(reason)
    with pg.postgres_server() as url:
        service = Service(Settings(db=url, media_dir=tmp_path / "media"), background_refit=False)
        emb, truth, centres = clustered(30, 3, seed=3)
        ids = project_from_vectors(service, "pg", embeddings=emb, class_names=["a", "b", "c"], head=centres)
        first = service.labeling.next_items("pg", annotator="ann", n=2)[0].image_id
        decided = service.labeling.decide("pg", image_id=first, action="correct", label="b", annotator="ann",
                                          next_n=2)
        assert decided.decision.label == "b" and first not in [i.image_id for i in decided.next]
        with pytest.raises(Conflict):
            service.labeling.decide("pg", image_id=decided.next[0].image_id, action="skip", annotator="bob")
        with pytest.raises(NotFound, match="no image 99999"):
            service.labeling.decide("pg", image_id=99999, action="skip", annotator="ann")
        assert len(ids) == 30 and truth.shape == (30,)
        service.close()


def test_a_refusal_keeps_the_live_state_and_a_failure_after_a_change_forgets_it(pets) -> None:  # type: ignore[no-untyped-def]
    """Rebuilding a state costs seconds at 100k images: a Conflict (someone else's item) or an unknown
    image must not cost that; a failure after the state changed in memory must (the store rolled back)."""
    service, truth, *_ = pets
    state = service.labeling.state("pets")
    image_id = service.labeling.next_items("pets", annotator="ann", n=1)[0].image_id
    with pytest.raises(Conflict):
        service.labeling.decide("pets", image_id=image_id, action="skip", annotator="bob")
    with pytest.raises(NotFound):
        service.labeling.decide("pets", image_id=10**6, action="skip", annotator="ann")
    assert service.labeling.state("pets") is state  # still the same live state

    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the next items could not be handed out")

    service.labeling._next = fail  # type: ignore[method-assign]  # fails after the decision changed the state
    with pytest.raises(RuntimeError):
        service.labeling.decide("pets", image_id=image_id, action="correct", label=truth[image_id], annotator="ann",
                                next_n=1)
    rebuilt = service.labeling.state("pets")
    assert rebuilt is not state and not rebuilt.is_labeled(image_id)  # the store rolled back; so did memory
