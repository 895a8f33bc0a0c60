"""embedding_counts follows repo.add_embeddings per project and model, in the same transaction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.store import bulk, repo
from core.store.db import make_engine
from core.store.migrate import upgrade
from core.store.schema import Image, Project, utcnow


def test_counts_per_project_and_model(tmp_path: Path) -> None:
    engine = make_engine(str(tmp_path / "c.sqlite"))
    upgrade(engine)
    with Session(engine) as session, session.begin():
        session.add_all([Project(id=1, name="a", settings={}), Project(id=2, name="b", settings={})])
        session.flush()
        bulk.insert_rows(session, Image, [{"id": i, "project_id": 1 + i % 2, "sha256": f"{i:064x}",
                                          "original_path": f"{i}", "status": "ok", "created_at": utcnow()}
                                         for i in range(1, 21)])
        repo.add_embeddings(session, model_id="m", image_ids=list(range(1, 16)), vectors=np.ones((15, 4)))
        repo.add_embeddings(session, model_id="n", image_ids=[2, 4], vectors=np.ones((2, 4)))
    with Session(engine) as session, session.begin():
        repo.add_embeddings(session, model_id="m", image_ids=[16, 18], vectors=np.ones((2, 4)))
    with Session(engine) as session:
        assert repo.embedded_model_ids(session, project_id=1) == [("m", 9), ("n", 2)]  # even ids
        assert repo.embedded_model_ids(session, project_id=2) == [("m", 8)]  # odd ids 1..15
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():  # a duplicate: all rolled back
        repo.add_embeddings(session, model_id="n", image_ids=[6, 4], vectors=np.ones((2, 4)))
    with Session(engine) as session:
        assert repo.embedded_model_ids(session, project_id=1) == [("m", 9), ("n", 2)]
    engine.dispose()
