"""A project's embeddings for one model as a memory-mapped file: the state's float32 matrix, zero-copy.

The store stays the source of truth (float16 blobs); the file is a cache that opens in O(1) instead
of decoding a million blobs through SQL, and it is what the live state computes on: the rows are
stored as float32, L2-normalised after the store's float16 rounding (exactly what the state used to
build in memory), so opening a project maps them instead of allocating and filling a copy (2 GB at
1M images, 1-5 s on these machines, most of it first-touch page faults). Three files per (project,
model) under the vector folder (`<database>.vectors/` beside a SQLite file, or `Settings.vector_dir`):
the rows (`.f32`, in embedding-id order), their image ids (`.ids`, int64) and a small JSON header
written last with os.replace. Readers take only the rows the header counts, so a crash while appending
leaves at most ignored bytes past the end; a rebuild writes a new generation and switches the header
to it.

Freshness: every write of embeddings (repo.add_embeddings) sets a new random `revision` on the
project's embedding_counts row in the same transaction and appends its rows to the file when the file
was current (write-through), publishing the new revision. Opening compares the header's revision
with the store's (one primary-key read); when they differ (a write from another machine, a rolled-back
transaction, a file from an older version), the full signature (row count, largest embedding id, latest
write time) decides between appending the newer rows and a rebuild. Writers hold an flock on `.lock`."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.store.schema import Embedding, EmbeddingCount, Image

BATCH = 50_000  # rows read from the store per query while writing the file
FORMAT = "f32-normalised"  # header["format"]: files of another format (the float16 ones) are rebuilt


@dataclass(frozen=True)
class Vectors:
    ids: np.ndarray      # (N,) int64, in embedding-id order
    rows: np.ndarray     # (N, D) float32 L2-normalised, memory-mapped read-only


def folder_of(session: Session) -> Path | None:
    """The vector folder: the session's `info["vector_folder"]` (Context sets it from Settings), else
    `<database file>.vectors` for a SQLite file database; None: read through SQL only."""
    configured = session.info.get("vector_folder")
    if configured is not None:
        return Path(configured)
    url = session.get_bind().engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database + ".vectors")


def stem_of(folder: Path, *, project_id: int, model_id: str) -> Path:
    return folder / f"p{project_id}-{hashlib.sha1(model_id.encode()).hexdigest()[:16]}"


def open_vectors(session: Session, folder: Path, *, project_id: int, model_id: str) -> Vectors:
    """The project's vectors for `model_id`, brought up to date with the store first."""
    stem = stem_of(folder, project_id=project_id, model_id=model_id)
    revision = store_revision(session, project_id=project_id, model_id=model_id)
    header = _read_header(stem)
    if header is not None and revision is not None and header.get("revision") == revision and _files_ok(stem, header):
        try:
            return _mapped(stem, header)
        except FileNotFoundError:  # another process's rebuild replaced this generation meanwhile: the lock's way
            pass
    want = _store_signature(session, project_id=project_id, model_id=model_id)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(stem):
        header = _refresh(session, stem, project_id=project_id, model_id=model_id, want=want)
        if revision is not None and header.get("revision") != revision:
            header = _publish(stem, {**header, "revision": revision})
        return _mapped(stem, header)


def store_revision(session: Session, *, project_id: int, model_id: str) -> str | None:
    """The revision repo.add_embeddings last set for these vectors (None: no row, or a pre-0009 one)."""
    return session.execute(select(EmbeddingCount.revision).where(
        EmbeddingCount.project_id == project_id, EmbeddingCount.model_id == model_id)).scalar()


def write_through(session: Session, folder: Path, *, project_id: int, model_id: str, before: str | None,
                  after: str, count: int) -> None:
    """Called by repo.add_embeddings inside its transaction, after the rows and the new revision:
    append the rows to the file if it was current at revision `before` (or start the file when there
    is none), and publish `after` if the file then holds the `count` rows embedding_counts says the
    store has (rows another transaction wrote with lower ids, possible on PostgreSQL, would be
    missing: then the header keeps the old revision). A file that was not current is left for the
    next opening to repair; so is this append if the transaction rolls back (the store never gets
    revision `after`)."""
    stem = stem_of(folder, project_id=project_id, model_id=model_id)
    header = _read_header(stem)
    if header is not None and not (before is not None and header.get("revision") == before
                                   and _files_ok(stem, header)):
        return
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(stem):
        current = _read_header(stem)
        if current != header:
            return  # someone else changed it meanwhile: the next opening sorts it out
        start = header or {"generation": uuid.uuid4().hex[:12], "count": 0, "last": 0, "dim": 0, "written": ""}
        written = _write_rows(session, stem, start, project_id=project_id, model_id=model_id)
        if written["count"] == count:
            _publish(stem, {**written, "revision": after})
        elif header is None:
            _publish(stem, written)  # a first file, not claimed current: the next opening checks it


def _store_signature(session: Session, *, project_id: int, model_id: str,
                     upto: int | None = None) -> tuple[int, int, str]:
    """(rows, largest embedding id, latest write time) of the store's vectors (those with id <= `upto`
    when given): SQLite may hand a deleted project's ids out again, the time tells those rows apart."""
    query = _selected(select(func.count(), func.max(Embedding.id), func.max(Embedding.created_at)), project_id,
                      model_id)
    if upto is not None:
        query = query.where(Embedding.id <= upto)
    count, last, written = session.execute(query).one()
    return int(count), int(last or 0), "" if written is None else str(written)


def _selected(query, project_id: int, model_id: str):  # type: ignore[no-untyped-def]
    return query.join(Image, Image.id == Embedding.image_id).where(
        Image.project_id == project_id, Image.status == "ok", Embedding.model_id == model_id)


def _read_header(stem: Path) -> dict | None:
    try:
        return json.loads(stem.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None


def _signature(header: dict) -> tuple[int, int, str]:
    return header["count"], header["last"], header.get("written", "")


def _refresh(session: Session, stem: Path, *, project_id: int, model_id: str, want: tuple[int, int, str]) -> dict:
    """Under the lock: append the rows newer than the header's, or rebuild when that cannot match."""
    header = _read_header(stem)
    if header is not None and _signature(header) == want and _files_ok(stem, header):
        return header  # another process brought it up to date while we waited for the lock
    if header is not None and _files_ok(stem, header) and _signature(header) == _store_signature(
            session, project_id=project_id, model_id=model_id, upto=header["last"]):
        appended = _write_rows(session, stem, header, project_id=project_id, model_id=model_id)
        if appended["count"] == want[0] and appended["last"] == want[1]:
            return _publish(stem, appended)
    fresh = {"generation": uuid.uuid4().hex[:12], "count": 0, "last": 0, "dim": 0, "written": ""}
    built = _write_rows(session, stem, fresh, project_id=project_id, model_id=model_id)
    built = _publish(stem, built)
    if header is not None and header["generation"] != built["generation"]:
        for suffix in (".f32", ".ids", ".f16"):
            _data_path(stem, header, suffix).unlink(missing_ok=True)
    return built


def _write_rows(session: Session, stem: Path, header: dict, *, project_id: int, model_id: str) -> dict:
    """Append the store's rows with embedding id > header['last'] to the header's files (fsynced), as
    float32 re-normalised; the header's `written` becomes the latest write time seen."""
    count, last, dim, written = header["count"], header["last"], header["dim"], header.get("written", "")
    with open(_data_path(stem, header, ".f32"), "ab") as data, open(_data_path(stem, header, ".ids"), "ab") as ids:
        data.truncate(count * dim * 4)
        ids.truncate(count * 8)
        while True:
            rows = session.execute(_selected(select(Embedding.id, Embedding.image_id, Embedding.vector,
                                                    Embedding.created_at), project_id, model_id)
                                   .where(Embedding.id > last).order_by(Embedding.id).limit(BATCH)).all()
            if not rows:
                break
            dim = dim or len(rows[0][2]) // 2
            half = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float16).reshape(len(rows), dim)
            data.write(normalized_float32(half).tobytes())
            ids.write(np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)).tobytes())
            count, last = count + len(rows), int(rows[-1][0])
            written = max([written, *(str(r[3]) for r in rows)])
        for handle in (data, ids):
            handle.flush()
            os.fsync(handle.fileno())
    return {**header, "count": count, "last": last, "dim": dim, "written": written, "format": FORMAT}


def _publish(stem: Path, header: dict) -> dict:
    temporary = stem.with_suffix(f".json.{uuid.uuid4().hex[:8]}")
    temporary.write_text(json.dumps(header))
    os.replace(temporary, stem.with_suffix(".json"))
    return header


def _files_ok(stem: Path, header: dict) -> bool:
    if header.get("format") != FORMAT:
        return False
    data, ids = _data_path(stem, header, ".f32"), _data_path(stem, header, ".ids")
    return (data.exists() and ids.exists() and data.stat().st_size >= header["count"] * header["dim"] * 4
            and ids.stat().st_size >= header["count"] * 8)


def _data_path(stem: Path, header: dict, suffix: str) -> Path:
    return stem.with_name(f"{stem.name}-{header['generation']}{suffix}")


def _mapped(stem: Path, header: dict) -> Vectors:
    count, dim = header["count"], header["dim"]
    if count == 0:
        return Vectors(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))
    ids = np.fromfile(_data_path(stem, header, ".ids"), dtype=np.int64, count=count)
    rows = np.memmap(_data_path(stem, header, ".f32"), dtype=np.float32, mode="r", shape=(count, dim))
    return Vectors(ids, rows)


@contextlib.contextmanager
def _locked(stem: Path) -> Iterator[None]:
    with open(stem.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def normalized_float32(rows: np.ndarray, *, chunk: int = 65_536) -> np.ndarray:
    """L2-normalised float32 copy of float16 `rows`, converted a chunk at a time: no full-size
    temporaries beside the result. The one normalisation of stored vectors (file and SQL paths)."""
    out = np.empty(rows.shape, dtype=np.float32)
    for start in range(0, rows.shape[0], chunk):
        block = out[start : start + chunk]
        block[...] = rows[start : start + chunk]
        block /= np.maximum(np.sqrt(np.einsum("ij,ij->i", block, block)), 1e-12)[:, None]
    return out
