"""Building the SQLAlchemy engine and session factory for SQLite or PostgreSQL.

SQLite gets the settings that make it safe for a multi-threaded web app: write-ahead logging
(readers do not block the writer), foreign keys enforced, a generous busy timeout, and every
transaction opened with ``BEGIN IMMEDIATE``. The last one matters most: it takes the write
lock before the first read, so two transactions can never both read a device as available
and then both reserve it. SQLite has no ``SELECT ... FOR UPDATE``; this is its equivalent.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_S = 30
READ_ONLY_OPTION = "devicelab_read_only"
# executemany of UPDATE and DELETE in pages (psycopg2's execute_batch), one round trip per page
# instead of one per row; INSERTs are batched either way
POSTGRES_EXECUTEMANY = {"executemany_mode": "values_plus_batch"}
# No overflow: an API worker under gevent serves a thousand requests and streams at once, and
# with overflow each pool would grow to its limit whenever they come together (a wall of
# streams opening after a restart), the processes of one host past PostgreSQL's
# max_connections. Ten per pool keep up with what two cores can ask; a request waits for one.
POSTGRES_POOL = {"pool_size": 10, "max_overflow": 0, "pool_recycle": 1800, "pool_timeout": 30}
# libpq waits for a connection without limit by default: to a host gone dark (no reset, no
# ICMP) that is the kernel's SYN retries, two minutes, with the request waiting on it. A
# `connect_timeout` in the database URL's query wins.
POSTGRES_CONNECT_TIMEOUT_S = 5

# What SQLite engines call before a statement outside a write transaction (see below), with
# the thread-local (greenlet-local under gevent) count of write transactions its caller holds
_sqlite_pause: tuple[Callable[[], None], threading.local] | None = None


def pause_before_sqlite_statements(pause: Callable[[], None] | None) -> None:
    """Have SQLite engines made from now on call `pause` before each statement that runs
    outside a write transaction: every statement of a read-only unit of work, and the
    `BEGIN IMMEDIATE` that opens a write transaction. Never while the caller holds a write
    transaction, on that connection or another: it holds the database's write lock, and
    another greenlet of the process that then asked for the lock would wait for it inside
    SQLite, where the holder cannot run again (the whole process would stand still for the
    busy timeout). Call it after gevent's patching: its count of write transactions is
    per greenlet then.

    The gevent worker sets `gevent.sleep(0)` (`make_sqlite_cooperative`): sqlite3 never
    returns to the hub, so a request on SQLite ran from its first statement to its response
    without letting any other greenlet run; with the pause it yields at its statements, as
    a request on PostgreSQL does while it waits for each answer."""
    global _sqlite_pause
    _sqlite_pause = None if pause is None else (pause, threading.local())


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
        kw["connect_args"] = {**postgres_connect_defaults(parsed), **kw.get("connect_args", {})}
        engine = create_engine(url, **{**POSTGRES_EXECUTEMANY, **pooling, **kw})
        _refuse_connections_closed_by_the_server(engine)
        return engine
    return create_engine(url, **kw)


def postgres_connect_defaults(url: URL) -> dict[str, Any]:
    """libpq parameters devicelab sets unless the database URL sets them itself."""
    return {} if "connect_timeout" in url.query else {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}


def make_read_engine(engine: Engine) -> Engine:
    """The engine of read-only units of work (see SessionUnitOfWork). PostgreSQL: a pool of
    its own whose connections are in autocommit from the start: no BEGIN and ROLLBACK round
    trips, and none to switch a pooled connection in and out of autocommit either (psycopg2
    pays about one each way). SQLite: the same engine and pool, with the flag that makes the
    begin hook open a deferred, lock-free transaction."""
    if engine.dialect.name == "postgresql":
        return make_engine(engine.url, isolation_level="AUTOCOMMIT")
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def engine_for(url: str, lab_engine: Engine) -> Engine:
    """The engine for `url`: `lab_engine` when it names the same database (one pool, not
    two, for the lab and the auth store in the default set-up), else a new one."""
    return lab_engine if make_url(url) == lab_engine.url else make_engine(url)


def read_engine_for(engine: Engine, lab_engine: Engine, lab_read_engine: Engine) -> Engine:
    return lab_read_engine if engine is lab_engine else make_read_engine(engine)


def _refuse_connections_closed_by_the_server(engine: Engine) -> None:
    """Drop a pooled connection the server has closed before handing it out.

    When PostgreSQL ends a session (restart, `pg_terminate_backend`, an idle timeout) it
    sends a last message and closes the socket, so an idle connection with bytes waiting on
    its socket is a dead one. Polling the socket costs a system call; SQLAlchemy's
    `pool_pre_ping` costs a `SELECT 1` round trip on every checkout, and an API request
    checks out twice (token, then data). Raising DisconnectionError makes the pool replace
    the connection and retry. What neither catches is a peer that vanished without closing
    (a host gone dark): the first statement then fails, and the pool is renewed."""

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if _closed_by_server(dbapi_connection):
            raise DisconnectionError("the database server closed this pooled connection")


def _closed_by_server(dbapi_connection: Any) -> bool:
    if dbapi_connection.closed:
        return True
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def read_only_options(backend: str) -> dict[str, Any]:
    """Execution options for a connection that will only read (see SessionUnitOfWork):
    PostgreSQL runs each statement on its own, with no BEGIN/ROLLBACK round trips; SQLite
    opens a deferred transaction, a snapshot that does not take the write lock."""
    if backend == "postgresql":
        return {"isolation_level": "AUTOCOMMIT"}
    return {READ_ONLY_OPTION: True}


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
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    if _sqlite_pause is not None:
        _pause_outside_write_transactions(engine, *_sqlite_pause)
    return engine


def _pause_outside_write_transactions(
    engine: Engine, pause: Callable[[], None], caller: threading.local
) -> None:
    def writing() -> int:
        return getattr(caller, "writing", 0)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if writing():
            return
        if statement == "BEGIN IMMEDIATE" or connection.get_execution_options().get(
            READ_ONLY_OPTION, False
        ):
            pause()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement == "BEGIN IMMEDIATE":  # it has the lock now
            caller.writing = writing() + 1

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _ended(connection: Any) -> None:
        if not connection.get_execution_options().get(READ_ONLY_OPTION, False):
            caller.writing = max(0, writing() - 1)
