"""core.store.vectors: the memory-mapped float16 file beside a SQLite database follows the store
(new rows appended, a changed store rebuilt, a torn or missing file rebuilt) and load_embeddings
reads through it the same vectors SQL gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.store import bulk, repo, vectors
from core.store.db import make_engine
from core.store.migrate import upgrade
from core.store.schema import Embedding, Image, Project, utcnow


def _engine(tmp_path: Path, n: int):  # type: ignore[no-untyped-def]
    engine = make_engine(str(tmp_path / "v.sqlite"))
    upgrade(engine)
    with Session(engine) as session, session.begin():
        session.add(Project(id=1, name="p", settings={}))
        session.flush()
        bulk.insert_rows(session, Image, [{"id": i, "project_id": 1, "sha256": f"{i:064x}", "original_path": f"{i}",
                                          "file_path": f"{i}", "status": "ok", "created_at": utcnow()}
                                         for i in range(1, n + 1)])
    return engine


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _add(engine, ids: list[int], vecs: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as session, session.begin():
        repo.add_embeddings(session, model_id="m", image_ids=ids, vectors=vecs)


def _load(engine) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return repo.load_embeddings(session, project_id=1, model_id="m")


def _header(tmp_path: Path) -> dict:
    (header,) = (tmp_path / "v.sqlite.vectors").glob("*.json")
    return json.loads(header.read_text())


def test_file_follows_appends_deletions_and_damage(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    engine = _engine(tmp_path, 40)
    first = _unit(rng, 20)
    _add(engine, list(range(21, 41)), first)  # stored out of image order: the result is sorted by image id
    ids, got = _load(engine)
    assert ids.tolist() == list(range(21, 41)) and np.abs(got - first).max() < 2e-3
    generation = _header(tmp_path)["generation"]
    second = _unit(rng, 20)
    _add(engine, list(range(1, 21)), second)
    ids, got = _load(engine)
    assert ids.tolist() == list(range(1, 41)) and np.abs(got - np.vstack([second, first])).max() < 2e-3
    assert _header(tmp_path)["generation"] == generation and _header(tmp_path)["count"] == 40  # appended
    with Session(engine) as session, session.begin():
        session.execute(delete(Embedding).where(Embedding.image_id <= 5))
    ids, got = _load(engine)
    assert ids.tolist() == list(range(6, 41)) and _header(tmp_path)["generation"] != generation  # rebuilt
    for data in (tmp_path / "v.sqlite.vectors").glob("*.f16"):
        data.unlink()
    ids, again = _load(engine)
    assert ids.tolist() == list(range(6, 41)) and np.array_equal(again, got)
    engine.dispose()


def test_crash_after_append_before_header_keeps_the_old_rows(tmp_path: Path) -> None:
    """Bytes past the header's count (an append that never published) are ignored and overwritten."""
    rng = np.random.default_rng(1)
    engine = _engine(tmp_path, 10)
    _add(engine, list(range(1, 6)), _unit(rng, 5))
    _load(engine)
    header = _header(tmp_path)
    (data,) = (tmp_path / "v.sqlite.vectors").glob("*.f16")
    with open(data, "ab") as handle:
        handle.write(b"\x00" * 7)  # a torn write
    with Session(engine) as session:
        mapped = vectors.open_vectors(session, tmp_path / "v.sqlite.vectors", project_id=1, model_id="m")
    assert mapped.rows.shape == (5, 8) and _header(tmp_path) == header
    more = _unit(rng, 5)
    _add(engine, list(range(6, 11)), more)
    ids, got = _load(engine)
    assert ids.tolist() == list(range(1, 11)) and np.abs(got[5:] - more).max() < 2e-3
    engine.dispose()


def test_in_memory_and_server_databases_read_through_sql() -> None:
    engine = make_engine("sqlite://")
    with Session(engine) as session:
        assert vectors.folder_of(session) is None
    engine.dispose()


def test_a_folder_that_cannot_be_written_falls_back_to_sql(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    engine = _engine(tmp_path, 4)
    vecs = _unit(rng, 4)
    _add(engine, [1, 2, 3, 4], vecs)
    (tmp_path / "v.sqlite.vectors").write_text("not a folder")  # mkdir fails with an OSError
    ids, got = _load(engine)
    assert ids.tolist() == [1, 2, 3, 4] and np.abs(got - vecs).max() < 2e-3
    engine.dispose()
