"""core.store.bulk on SQLite (executemany in chunks; the PostgreSQL COPY path is exercised by
tests/store/test_indexes.py, which fills its tables with it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.store import bulk, repo
from core.store.db import make_engine
from core.store.migrate import upgrade
from core.store.schema import Image, Project, utcnow


def test_insert_rows_and_embeddings_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 7)  # several chunks
    engine = make_engine(str(tmp_path / "b.sqlite"))
    upgrade(engine)
    with Session(engine) as session, session.begin():
        session.add(Project(id=1, name="p", settings={}))
        session.flush()
        assert not bulk.is_postgres(session)
        bulk.insert_rows(session, Image, [{"id": i, "project_id": 1, "sha256": f"{i:064x}", "original_path": f"{i}",
                                          "file_path": f"{i}", "status": "ok", "created_at": utcnow()}
                                         for i in range(1, 31)])
        vectors = np.random.default_rng(0).standard_normal((30, 16)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        repo.add_embeddings(session, model_id="m", image_ids=list(range(1, 31)), vectors=vectors)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Image)) == 30
        ids, got = repo.load_embeddings(session, project_id=1, model_id="m")
    assert ids.tolist() == list(range(1, 31)) and np.abs(got - vectors).max() < 2e-3
    engine.dispose()


def test_insert_rows_names_an_unknown_column(tmp_path: Path) -> None:
    engine = make_engine(str(tmp_path / "u.sqlite"))
    upgrade(engine)
    with Session(engine) as session, pytest.raises(InvalidInput, match="images has no column colour; columns: id"):
        bulk.insert_rows(session, Image, [{"id": 1, "colour": "red"}])
    engine.dispose()
