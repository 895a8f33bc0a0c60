"""A project's embeddings for one model as a memory-mapped float16 file beside the SQLite database.

The store stays the source of truth; the file is a cache that opens in O(1) instead of decoding a
million blobs through SQL. Three files per (project, model) under `<database>.vectors/`: the rows
(`.f16`, float16, D per row, in embedding-id order), their image ids (`.ids`, int64) and a small JSON
header written last with os.replace. Readers take only the rows the header counts, so a crash while
appending leaves at most ignored bytes past the end; a rebuild writes a new generation of files and
switches the header to it. The header records the store's (row count, largest embedding id) of the
project's vectors; when the store disagrees, only the newer rows are appended (new ids all above the
recorded largest) or the file is rebuilt. Writers hold an flock on `.lock`."""

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

from core.store.schema import Embedding, Image

BATCH = 50_000  # rows read from the store per query while writing the file


@dataclass(frozen=True)
class Vectors:
    ids: np.ndarray      # (N,) int64, in embedding-id order
    rows: np.ndarray     # (N, D) float16, memory-mapped read-only


def folder_of(session: Session) -> Path | None:
    """`<database file>.vectors` for a SQLite file database; None for other stores (read through SQL)."""
    url = session.get_bind().engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database + ".vectors")


def open_vectors(session: Session, folder: Path, *, project_id: int, model_id: str) -> Vectors:
    """The project's vectors for `model_id`, brought up to date with the store first."""
    stem = folder / f"p{project_id}-{hashlib.sha1(model_id.encode()).hexdigest()[:16]}"
    want = _store_signature(session, project_id=project_id, model_id=model_id)
    header = _read_header(stem)
    if header is None or _signature(header) != want or not _files_ok(stem, header):
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(stem):
            header = _refresh(session, stem, project_id=project_id, model_id=model_id, want=want)
    return _mapped(stem, header)


def _store_signature(session: Session, *, project_id: int, model_id: str,
                     upto: int | None = None) -> tuple[int, int, str]:
    """(rows, largest embedding id, latest write time) of the store's vectors (those with id <= `upto`
    when given): SQLite may hand a deleted project's ids out again, the time tells those rows apart."""
    query = _selected(select(func.count(), func.max(Embedding.id), func.max(Embedding.created_at)), project_id,
                      model_id)
    if upto is not None:
        query = query.where(Embedding.id <= upto)
    count, last, written = session.execute(query).one()
    return int(count), int(last or 0), str(written)


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
            return _publish(stem, {**appended, "written": want[2]})
    fresh = {"generation": uuid.uuid4().hex[:12], "count": 0, "last": 0, "dim": 0}
    built = _write_rows(session, stem, fresh, project_id=project_id, model_id=model_id)
    built = _publish(stem, {**built, "written": want[2]})
    if header is not None and header["generation"] != built["generation"]:
        for suffix in (".f16", ".ids"):
            _data_path(stem, header, suffix).unlink(missing_ok=True)
    return built


def _write_rows(session: Session, stem: Path, header: dict, *, project_id: int, model_id: str) -> dict:
    """Append the store's rows with embedding id > header['last'] to the header's files (fsynced)."""
    count, last, dim = header["count"], header["last"], header["dim"]
    with open(_data_path(stem, header, ".f16"), "ab") as data, open(_data_path(stem, header, ".ids"), "ab") as ids:
        data.truncate(count * dim * 2)
        ids.truncate(count * 8)
        while True:
            rows = session.execute(_selected(select(Embedding.id, Embedding.image_id, Embedding.vector), project_id,
                                             model_id).where(Embedding.id > last).order_by(Embedding.id)
                                   .limit(BATCH)).all()
            if not rows:
                break
            dim = dim or len(rows[0][2]) // 2
            data.write(b"".join(r[2] for r in rows))
            ids.write(np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)).tobytes())
            count, last = count + len(rows), int(rows[-1][0])
        for handle in (data, ids):
            handle.flush()
            os.fsync(handle.fileno())
    return {**header, "count": count, "last": last, "dim": dim}


def _publish(stem: Path, header: dict) -> dict:
    temporary = stem.with_suffix(f".json.{uuid.uuid4().hex[:8]}")
    temporary.write_text(json.dumps(header))
    os.replace(temporary, stem.with_suffix(".json"))
    return header


def _files_ok(stem: Path, header: dict) -> bool:
    data, ids = _data_path(stem, header, ".f16"), _data_path(stem, header, ".ids")
    return (data.exists() and ids.exists() and data.stat().st_size >= header["count"] * header["dim"] * 2
            and ids.stat().st_size >= header["count"] * 8)


def _data_path(stem: Path, header: dict, suffix: str) -> Path:
    return stem.with_name(f"{stem.name}-{header['generation']}{suffix}")


def _mapped(stem: Path, header: dict) -> Vectors:
    count, dim = header["count"], header["dim"]
    if count == 0:
        return Vectors(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float16))
    ids = np.fromfile(_data_path(stem, header, ".ids"), dtype=np.int64, count=count)
    rows = np.memmap(_data_path(stem, header, ".f16"), dtype=np.float16, mode="r", shape=(count, dim))
    return Vectors(ids, rows)


@contextlib.contextmanager
def _locked(stem: Path) -> Iterator[None]:
    with open(stem.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def normalized_float32(rows: np.ndarray, order: np.ndarray | None = None, *, chunk: int = 65_536) -> np.ndarray:
    """L2-normalised float32 copy of float16 `rows` (taken in `order` when given), converted a chunk
    at a time: no full-size temporaries beside the result."""
    out = np.empty(rows.shape, dtype=np.float32)
    for start in range(0, rows.shape[0], chunk):
        block = out[start : start + chunk]
        block[...] = rows[start : start + chunk] if order is None else rows[order[start : start + chunk]]
        block /= np.maximum(np.sqrt(np.einsum("ij,ij->i", block, block)), 1e-12)[:, None]
    return out
