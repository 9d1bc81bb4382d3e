"""Building the SQLAlchemy engine and session factory for SQLite or PostgreSQL.

SQLite gets the settings that make it safe for a multi-threaded web app: write-ahead logging
(readers do not block the writer), foreign keys enforced, a generous busy timeout, and every
transaction opened with ``BEGIN IMMEDIATE``. The last one matters most: it takes the write
lock before the first read, so two transactions can never both read a device as available
and then both reserve it. SQLite has no ``SELECT ... FOR UPDATE``; this is its equivalent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_S = 30
POSTGRES_POOL = {"pool_size": 10, "max_overflow": 20, "pool_recycle": 1800, "pool_timeout": 30}


def make_engine(url: str, **kw: Any) -> Engine:
    """An engine for `url`; keyword arguments go to `sqlalchemy.create_engine` and win over
    the defaults chosen here."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, kw)
    if backend == "postgresql":
        # pool sizing only applies to the default queue pool, not to e.g. NullPool
        pooling = {} if "poolclass" in kw else POSTGRES_POOL
        return create_engine(url, **{"pool_pre_ping": True, **pooling, **kw})
    return create_engine(url, **kw)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # Repositories map rows to entities themselves; nothing is expired or autoflushed.
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database)


def _sqlite_engine(url: str, kw: dict[str, Any]) -> Engine:
    path = _sqlite_file(url)
    if path is not None:
        path.expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, **kw.pop("connect_args", {})}
    engine = create_engine(url, connect_args=connect_args, **kw)

    @event.listens_for(engine, "connect")
    def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 driver (it would defer it and skip it for
        # SELECTs); the "begin" hook below emits our own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
