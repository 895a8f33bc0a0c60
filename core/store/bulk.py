"""Bulk writes: many rows of one table in one statement. PostgreSQL gets `COPY ... FROM STDIN`
(psycopg 3's `cursor.copy`, inside the session's transaction); SQLite and the others get one
executemany `INSERT`. Like the rest of the store, nothing here commits.

COPY skips SQLAlchemy's Python-side column defaults, so callers give every column they need
(`created_at` included); every row of one call has the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import DeclarativeBase, Session

from core.errors import InvalidInput

CHUNK_ROWS = 5000


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_rows(session: Session, model: type[DeclarativeBase], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts of column -> value) into `model`'s table."""
    if not rows:
        return
    columns = list(rows[0])
    table = cast(Table, model.__table__)
    unknown = [name for name in columns if name not in table.c]
    if unknown:
        valid = ", ".join(table.c.keys())
        raise InvalidInput(f"rows: {table.name} has no column {', '.join(unknown)}; columns: {valid}")
    if is_postgres(session):
        _copy(session, table.name, columns, rows)
        return
    for start in range(0, len(rows), CHUNK_ROWS):
        session.execute(insert(model), list(rows[start : start + CHUNK_ROWS]))


def _copy(session: Session, table: str, columns: list[str], rows: Sequence[Mapping[str, Any]]) -> None:
    session.flush()  # rows the ORM still holds go first (e.g. the images these embeddings point at)
    driver = session.connection().connection.driver_connection
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row([row[name] for name in columns])
