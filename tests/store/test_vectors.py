"""core.store.vectors: the memory-mapped float32 file beside a SQLite database follows the store
(new rows appended, a changed store rebuilt, a torn or missing file rebuilt) and load_embeddings
reads through it the same vectors SQL gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from core.store import bulk, repo, vectors
from core.store.db import make_engine
from core.store.migrate import upgrade
from core.store.schema import Image, Project, utcnow


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
        repo.delete_embeddings(session, model_id="m", image_ids=[1, 2, 3, 4, 5])
    ids, got = _load(engine)
    assert ids.tolist() == list(range(6, 41)) and _header(tmp_path)["generation"] != generation  # rebuilt
    for data in (tmp_path / "v.sqlite.vectors").glob("*.f32"):
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
    (data,) = (tmp_path / "v.sqlite.vectors").glob("*.f32")
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
    (tmp_path / "v.sqlite.vectors").write_text("not a folder")  # mkdir fails with an OSError
    _add(engine, [1, 2, 3, 4], vecs)  # the write-through gives up quietly: the rows are stored
    ids, got = _load(engine)
    assert ids.tolist() == [1, 2, 3, 4] and np.abs(got - vecs).max() < 2e-3
    engine.dispose()


def _statements(engine) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(str(args[2]).lower()))
    return seen


def test_writes_keep_the_file_current_and_opening_reads_one_row(tmp_path: Path) -> None:
    """add_embeddings appends to the file in its transaction; opening then checks the revision only."""
    rng = np.random.default_rng(3)
    engine = _engine(tmp_path, 30)
    first, second = _unit(rng, 10), _unit(rng, 20)
    _add(engine, list(range(1, 11)), first)
    _add(engine, list(range(11, 31)), second)
    header = _header(tmp_path)
    with Session(engine) as session:
        assert header["count"] == 30 and header["revision"] == vectors.store_revision(session, project_id=1,
                                                                                       model_id="m")
    seen = _statements(engine)
    ids, got = _load(engine)
    assert ids.tolist() == list(range(1, 31)) and np.abs(got - np.vstack([first, second])).max() < 2e-3
    assert not any("count(" in s for s in seen), seen  # no signature query over the embeddings
    assert isinstance(got, np.memmap) and not got.flags.writeable  # the file itself, read-only
    engine.dispose()


def test_a_rolled_back_write_is_never_served(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    engine = _engine(tmp_path, 20)
    kept = _unit(rng, 10)
    _add(engine, list(range(1, 11)), kept)
    with pytest.raises(RuntimeError), Session(engine) as session, session.begin():
        repo.add_embeddings(session, model_id="m", image_ids=list(range(11, 21)), vectors=_unit(rng, 10))
        raise RuntimeError("the transaction fails after the file was appended to")
    assert _header(tmp_path)["count"] == 20  # the file ran ahead of the store
    ids, got = _load(engine)
    assert ids.tolist() == list(range(1, 11)) and np.abs(got - kept).max() < 2e-3
    more = _unit(rng, 10)
    _add(engine, list(range(11, 21)), more)
    ids, got = _load(engine)
    assert ids.tolist() == list(range(1, 21)) and np.abs(got[10:] - more).max() < 2e-3
    engine.dispose()


def test_a_float16_file_of_an_older_version_is_rebuilt(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    engine = _engine(tmp_path, 6)
    vecs = _unit(rng, 6)
    _add(engine, list(range(1, 7)), vecs)
    (stem,) = (tmp_path / "v.sqlite.vectors").glob("*.json")
    old = {k: v for k, v in _header(tmp_path).items() if k != "format"}  # what 0008's code wrote
    stem.write_text(json.dumps(old))
    ids, got = _load(engine)
    assert ids.tolist() == list(range(1, 7)) and np.abs(got - vecs).max() < 2e-3
    assert _header(tmp_path)["format"] == vectors.FORMAT
    engine.dispose()


def test_the_vector_folder_of_each_kind_of_database(tmp_path: Path) -> None:
    from core.config import Settings

    assert Settings(db=str(tmp_path / "a.sqlite")).resolved_vector_dir() is None  # beside the file: folder_of
    assert Settings(db=str(tmp_path / "a.sqlite"), vector_dir=tmp_path / "v").resolved_vector_dir() == tmp_path / "v"
    server = Settings(db="postgresql+psycopg://u:secret@db.example:5432/labels", media_dir=tmp_path / "media")
    folder = server.resolved_vector_dir()
    assert folder is not None and folder.parent == tmp_path / "vectors" and "secret" not in str(folder)
    other = Settings(db="postgresql+psycopg://u:other@db.example:5432/labels", media_dir=tmp_path / "media")
    assert other.resolved_vector_dir() == folder  # the same database, whatever the password
    env = Settings.from_env({"CLIPMARK_DB": "postgresql://x@h/d", "CLIPMARK_VECTORS": str(tmp_path / "v")})
    assert env.resolved_vector_dir() == tmp_path / "v"


def test_a_server_database_uses_the_configured_folder(tmp_path: Path) -> None:
    """Sessions made by the Context carry the folder, whatever the backend (here a SQLite URL)."""
    from core.config import Settings
    from core.usecases.context import Context

    context = Context(Settings(db=f"sqlite:///{tmp_path / 'u.sqlite'}", vector_dir=tmp_path / "cache"))
    with context.read_sessions() as session:
        assert vectors.folder_of(session) == tmp_path / "cache"
    context.close()


def test_rows_committed_with_lower_ids_are_not_missed(tmp_path: Path) -> None:
    """PostgreSQL may commit a concurrent writer's rows with ids below the file's last one: the
    write-through then finds fewer rows than embedding_counts and does not claim the file current."""
    from sqlalchemy import insert, update

    from core.store.schema import Embedding, EmbeddingCount

    rng = np.random.default_rng(6)
    engine = _engine(tmp_path, 12)
    with Session(engine) as session, session.begin():  # ids 1-4 taken, so model m's rows start at 5
        repo.add_embeddings(session, model_id="other", image_ids=[1, 2, 3, 4], vectors=_unit(rng, 4))
    _add(engine, list(range(1, 11)), _unit(rng, 10))
    _load(engine)
    late = _unit(rng, 1)
    with Session(engine) as session, session.begin():  # the other writer's row, id 2 (freed), counted
        repo.delete_embeddings(session, model_id="other", image_ids=[1, 2, 3, 4])
        session.execute(insert(Embedding).values(id=2, image_id=11, model_id="m", dim=8,
                                                 vector=late.astype(np.float16).tobytes(), created_at=utcnow()))
        session.execute(update(EmbeddingCount).where(EmbeddingCount.model_id == "m")
                        .values(count=EmbeddingCount.count + 1))
    _add(engine, [12], _unit(rng, 1))
    ids, got = _load(engine)
    assert ids.tolist() == list(range(1, 13)) and np.abs(got[10] - late[0]).max() < 2e-3
    engine.dispose()


def test_files_replaced_between_the_check_and_the_mapping_are_reopened_under_the_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path maps the files without the lock: when another process's rebuild removed them
    after the header was read (made to happen here by removing them and skipping the file check),
    the opening takes the locked path and rebuilds (it used to fall back to reading every vector
    through SQL, 6 s at 1M)."""
    rng = np.random.default_rng(1)
    engine = _engine(tmp_path, 10)
    vecs = _unit(rng, 10)
    _add(engine, list(range(1, 11)), vecs)
    _load(engine)
    for data in (tmp_path / "v.sqlite.vectors").glob("*.ids"):
        data.unlink()
    checks = iter([True])
    real = vectors._files_ok
    monkeypatch.setattr(vectors, "_files_ok", lambda stem, header: next(checks, None) or real(stem, header))
    ids, got = _load(engine)
    assert ids.tolist() == list(range(1, 11)) and np.abs(got - vecs).max() < 2e-3
    assert list((tmp_path / "v.sqlite.vectors").glob("*.ids"))  # rebuilt: not a fall back to reading SQL
    engine.dispose()
