"""Engines and sessions. SQLite gets WAL, a busy timeout and foreign keys; any other URL is passed on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(db: str) -> str:
    """Accept a SQLAlchemy URL or a plain file path (taken as SQLite)."""
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def make_engine(db: str) -> Engine:
    url = normalize_url(db)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    event.listen(engine, "before_cursor_execute", _refuse_writes_when_read_only)
    return engine


WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def _refuse_writes_when_read_only(connection, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
    """A read-only action that writes is a bug: on SQLite its deferred transaction fails with
    "database is locked" whenever another writer went first, which no test would catch reliably."""
    if connection.get_execution_options().get(READ_ONLY) and statement.lstrip()[:7].upper().startswith(WRITES):
        raise ReadOnlyWrite(f"a read-only transaction tried to write: {statement[:80]}")


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (savepoints work then).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_sessionmaker(engine: Engine, *, vector_folder: Path | None = None) -> sessionmaker[Session]:
    """Sessions that keep their objects after commit; `vector_folder` (core.store.vectors) in their info."""
    info = {} if vector_folder is None else {"vector_folder": vector_folder}
    return sessionmaker(engine, expire_on_commit=False, info=info)


READ_ONLY = "clipmark_read_only"


class ReadOnlyWrite(RuntimeError):
    """A programming error: an action opened a read-only transaction and then wrote in it."""


def read_only(engine: Engine) -> Engine:
    """The same engine (and pool) for read-only transactions: on SQLite they BEGIN DEFERRED, so a
    read never takes, nor waits for, the write lock. Elsewhere the option changes nothing."""
    return engine.execution_options(**{READ_ONLY: True})


def is_read_only(session: Session) -> bool:
    """Whether `session`'s transaction is a read-only one (began deferred: it must not write)."""
    return bool(session.connection().get_execution_options().get(READ_ONLY, False))


def _sqlite_begin(connection) -> None:  # type: ignore[no-untyped-def]
    """Take the write lock when the transaction starts: a deferred transaction that reads and then
    writes fails at once with 'database is locked' when another process wrote in between, whereas
    BEGIN IMMEDIATE waits (busy_timeout) for its turn. Concurrent annotators need the waiting kind.
    Read-only transactions (`read_only(engine)`) begin deferred: they never write."""
    deferred = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")
