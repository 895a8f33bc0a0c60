"""The schema comes only from Alembic: upgrade head, downgrade base, and the models match the DDL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from core.store.db import make_engine
from core.store.migrate import downgrade, upgrade
from core.store.schema import Base
from tests import pg

EXPECTED_TABLES = {
    "projects", "label_classes", "images", "embeddings", "text_heads", "prediction_runs",
    "predictions", "events", "current_labels", "users", "leases", "instances", "region_proposals", "region_events",
}


def _check_round_trip(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
        assert EXPECTED_TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], f"models differ from the migrated schema: {diff}"
        downgrade(engine)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)  # and back up again: downgrade left nothing behind that blocks it
    finally:
        engine.dispose()


def test_sqlite_upgrade_downgrade_and_models_match(tmp_path: Path) -> None:
    _check_round_trip(str(tmp_path / "fresh.sqlite"))


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = make_engine(str(tmp_path / "p.sqlite"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    engine.dispose()


@pytest.mark.postgres
def test_postgres_upgrade_downgrade_and_models_match() -> None:
    reason = pg.available()
    if reason:
        pytest.skip(reason)
    with pg.postgres_server() as url:
        _check_round_trip(url)
