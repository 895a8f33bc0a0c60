"""The hot queries of the views use indexes on PostgreSQL (migration 0007), checked with EXPLAIN on
the statements the store functions really send, captured as they run. The tables hold 40,000 images
in 20 projects (2,000 in the one asked about), written with COPY (core.store.bulk) and ANALYZEd, so
the planner would choose a sequential scan where no index applies."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from core.store import bulk, repo
from core.store.db import make_engine
from core.store.migrate import upgrade
from core.store.schema import CurrentLabel, Event, Image, LabelClass, Lease, Prediction, Project, User, utcnow
from core.usecases.team import leases
from tests import pg

pytestmark = pytest.mark.postgres
PROJECTS, PER_PROJECT, DIM, MODEL, ASKED = 40, 1000, 512, "m@test", 7


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    reason = pg.available()
    if reason:
        pytest.skip(reason)
    with pg.postgres_server() as url:
        made = make_engine(url)
        upgrade(made)
        with Session(made) as session, session.begin():
            _fill(session)
        with made.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        yield made
        made.dispose()


def _fill(session: Session) -> None:
    now, total = utcnow(), PROJECTS * PER_PROJECT
    session.add_all([Project(id=p, name=f"p{p}", settings={}) for p in range(1, PROJECTS + 1)]
                    + [User(id=1, name="u"), User(id=2, name="v")])
    session.flush()
    session.add_all([LabelClass(id=p, project_id=p, name="c", position=0) for p in range(1, PROJECTS + 1)])
    session.flush()
    project = lambda i: (i - 1) // PER_PROJECT + 1  # noqa: E731
    bulk.insert_rows(session, Image, [
        {"id": i, "project_id": project(i), "sha256": f"{i:064x}", "original_path": f"{i}.jpg",
         "file_path": f"{i}.jpg", "status": "ok" if i % 50 else "failed", "created_at": now}
        for i in range(1, total + 1)])
    vectors = np.ones((total, DIM), dtype=np.float32)
    repo.add_embeddings(session, model_id=MODEL, image_ids=list(range(1, total + 1)), vectors=vectors)
    labeled = range(1, total + 1, 3)
    bulk.insert_rows(session, Event, [
        {"id": i, "project_id": project(i), "image_id": i, "action": "import", "source": "import",
         "label_after_id": project(i), "created_at": now} for i in labeled])
    bulk.insert_rows(session, CurrentLabel, [
        {"image_id": i, "project_id": project(i), "label_id": project(i), "source": "import", "event_id": i,
         "updated_at": now} for i in labeled])
    asked = np.arange((ASKED - 1) * PER_PROJECT + 1, ASKED * PER_PROJECT + 1)
    repo.add_prediction_run(session, project_id=ASKED, model_id=MODEL, model_version="zero-shot", prompts_hash=None,
                            label_ids=[ASKED], image_ids=asked, probs=np.ones((PER_PROJECT, 1), dtype=np.float32))
    bulk.insert_rows(session, Lease, [
        {"image_id": i, "slot": 0, "project_id": project(i), "user_id": 1,
         "expires_at": now + timedelta(minutes=i % 7 - 3), "done": i % 4 == 0, "created_at": now}
        for i in range(1, total + 1, 5)])


def plans(engine: Engine, call: Callable[[Session], Any]) -> list[str]:
    """The EXPLAIN of every statement `call` sends."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            call(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    with engine.connect() as conn:
        return ["\n".join(conn.exec_driver_sql("EXPLAIN " + s, p).scalars()) for s, p in sent]


# query -> (the store function's call, the index of migration 0007 its plan must use, or None: any index)
HOT: dict[str, tuple[Callable[[Session], Any], str | None]] = {
    "status: image count": (lambda s: repo.image_count(s, project_id=ASKED),
                            "Index Only Scan using ix_images_project_status_id"),
    "status: label counts": (lambda s: repo.label_counts(s, project_id=ASKED),
                             "Index Only Scan using ix_current_labels_project_source"),
    "status: embedded models": (lambda s: repo.embedded_model_ids(s, project_id=ASKED), "on embedding_counts"),
    "embed: what is left to embed": (
        lambda s: repo.images_missing_embedding(s, project_id=ASKED, model_id=MODEL), "ix_embeddings_model_image"),
    "open: a model's embeddings": (lambda s: repo.load_embeddings(s, project_id=ASKED, model_id=MODEL),
                                   "ix_embeddings_model_image"),
    "pages: a project's images in order": (lambda s: repo.images_of(s, project_id=ASKED), None),
    "queue: current labels": (lambda s: repo.current_labels(s, project_id=ASKED), None),
    "queue: live leases of others": (lambda s: leases.held_by_others(s, project_id=ASKED, user_id=2), None),
}
BIG_TABLES = re.compile(r"Seq Scan on (images|embeddings|current_labels|leases)\b")
SMALL_TABLES = re.compile(r"Scan on embedding_counts\b")  # one row per project and model (migration 0008)


@pytest.mark.parametrize("name", list(HOT))
def test_hot_query_uses_an_index(engine: Engine, name: str) -> None:
    call, expected = HOT[name]
    found = plans(engine, call)
    assert found, f"{name}: no SELECT was sent"
    for plan in found:
        assert ("Index" in plan or SMALL_TABLES.search(plan)) and not BIG_TABLES.search(plan), f"{name}:\n{plan}"
    if expected is not None:
        assert any(expected in plan for plan in found), f"{name}: {expected} not in\n" + "\n".join(found)


def test_copy_wrote_every_row(engine: Engine) -> None:
    """The fill went through COPY (core.store.bulk on PostgreSQL): every row is there and readable."""
    with Session(engine) as session:
        ids, vectors = repo.load_embeddings(session, project_id=ASKED, model_id=MODEL)
        assert session.scalar(select(func.count()).select_from(Image)) == PROJECTS * PER_PROJECT
    assert len(ids) == PER_PROJECT - PER_PROJECT // 50 and vectors.shape == (len(ids), DIM)
    assert np.allclose(vectors, 1 / np.sqrt(DIM), atol=1e-3)
    with Session(engine) as session:
        run = repo.latest_run(session, project_id=ASKED)
        rows = session.execute(select(Prediction.label_id, Prediction.confidence).where(Prediction.run_id == run.id))
        assert sorted(set(rows)) == [(ASKED, 1.0)] and run.label_ids == [ASKED]
