"""The schema comes from the migrations: they go up and down cleanly on both backends and build
exactly what `tables.py` describes. And the engine sets SQLite up for concurrent use."""

from __future__ import annotations

import itertools
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from adapters.persistence import tables
from adapters.persistence.engine import make_engine, make_read_engine
from adapters.persistence.schema import (
    alembic_config,
    current_revision,
    downgrade_schema,
    head_revision,
    upgrade_schema,
)

APP_TABLES = set(tables.metadata.tables)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    return request.getfixturevalue(fixture)


def _table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_revisions_form_one_documented_line() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    chain = list(scripts.walk_revisions())  # head first
    assert next(r.revision for r in chain) == head_revision()
    assert chain[-1].down_revision is None
    for newer, older in itertools.pairwise(chain):
        assert newer.down_revision == older.revision
    for revision in chain:
        assert (revision.module.__doc__ or "").strip(), f"{revision.revision} has no docstring"


def test_migrations_go_up_to_head_and_back_down_to_base(empty_url: str) -> None:
    assert current_revision(empty_url) is None

    upgrade_schema(empty_url)
    assert current_revision(empty_url) == head_revision()
    assert _table_names(empty_url) == APP_TABLES | {"alembic_version"}

    downgrade_schema(empty_url, "base")
    assert current_revision(empty_url) is None
    assert _table_names(empty_url) <= {"alembic_version"}

    upgrade_schema(empty_url)  # and up again, over the leftovers of the way down
    assert current_revision(empty_url) == head_revision()


def test_migrations_build_what_the_tables_module_describes(empty_url: str) -> None:
    upgrade_schema(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, tables.metadata) == []
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_sort_keys_use_code_point_order_on_postgres(fresh_postgres_url: str) -> None:
    """Alembic does not compare collations, so check the one that keyset pagination needs."""
    upgrade_schema(fresh_postgres_url)
    engine = make_engine(fresh_postgres_url)
    try:
        with engine.connect() as connection:
            reflected = {
                (table, column): collation
                for table, column, collation in connection.execute(
                    sa.text(
                        "SELECT table_name, column_name, collation_name "
                        "FROM information_schema.columns WHERE table_schema = 'public'"
                    )
                )
            }
    finally:
        engine.dispose()
    dialect = engine.dialect
    for table in tables.metadata.sorted_tables:
        for column in table.columns:
            wanted = getattr(column.type.dialect_impl(dialect), "collation", None)
            assert reflected[(table.name, column.name)] == wanted, (table.name, column.name)
    assert reflected[("devices", "name")] == "C"
    assert reflected[("test_runs", "id")] == "C"


def test_schema_api_needs_no_alembic_ini_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///relative/dir/lab.db"
    upgrade_schema(url)
    assert (tmp_path / "relative" / "dir" / "lab.db").exists()
    assert current_revision(url) == head_revision()


# -- the engine -----------------------------------------------------------------------------


def _pragma(connection: Any, name: str) -> Any:
    return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_engine_creates_the_directory_and_sets_up_the_connection(sqlite_url: str) -> None:
    path = Path(make_url(sqlite_url).database or "")
    assert not path.parent.exists()
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert path.parent.is_dir()
            assert _pragma(connection, "journal_mode") == "wal"
            assert _pragma(connection, "foreign_keys") == 1
            assert _pragma(connection, "busy_timeout") == 30_000
    finally:
        engine.dispose()


def test_sqlite_transactions_take_the_write_lock_before_their_first_read(sqlite_url: str) -> None:
    """BEGIN IMMEDIATE: a transaction that has only read still keeps other writers out, so two
    transactions can never both see a device as available and both reserve it."""
    upgrade_schema(sqlite_url)
    engine = make_engine(sqlite_url)
    other = sqlite3.connect(make_url(sqlite_url).database or "", timeout=0.05)
    try:
        with engine.connect() as connection, connection.begin():
            connection.exec_driver_sql("SELECT count(*) FROM devices").scalar()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the transaction ended
        other.rollback()
    finally:
        other.close()
        engine.dispose()


def test_sqlite_transactions_are_real_transactions(sqlite_url: str) -> None:
    upgrade_schema(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            with connection.begin() as transaction:
                connection.exec_driver_sql(
                    "INSERT INTO outbox (id, kind, run_id, payload, created_at) "
                    "VALUES ('m1', 'k', 'r', '{}', '2026-01-01 00:00:00')"
                )
                transaction.rollback()
            assert connection.exec_driver_sql("SELECT count(*) FROM outbox").scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.postgres
def _terminate(url: str, pid: int) -> None:
    """End backend `pid` from another connection, and wait until it is gone."""
    # autocommit: in a transaction, pg_stat_activity would keep showing its first snapshot
    killer = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with killer.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(200):
                alive = connection.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                ).scalar()
                if not alive:
                    return
                time.sleep(0.01)
        raise AssertionError(f"backend {pid} did not end")
    finally:
        killer.dispose()


def test_postgres_pools_replace_connections_the_server_closed(migrated_postgres_url: str) -> None:
    """No SELECT 1 before each checkout (pool_pre_ping): the pool looks at the socket of the
    idle connection instead; one the server has closed is replaced, not handed out."""
    engine = make_engine(migrated_postgres_url)
    read_engine = make_read_engine(engine)
    try:
        assert engine.pool.size() == read_engine.pool.size() == 10  # type: ignore[attr-defined]
        assert read_engine.pool is not engine.pool
        for pooled in (engine, read_engine):
            with pooled.connect() as connection:
                first = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            _terminate(migrated_postgres_url, first)  # while it idles in the pool
            with pooled.connect() as connection:  # would raise if the dead one came back
                second = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            assert second != first
        with read_engine.connect() as connection:
            assert connection.connection.dbapi_connection.autocommit is True
        with engine.connect() as connection:
            assert connection.connection.dbapi_connection.autocommit is False
    finally:
        read_engine.dispose()
        engine.dispose()
