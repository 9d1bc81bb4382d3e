"""The gevent worker's pause before SQLite statements (entrypoints/gunicorn_worker.py and
`pause_before_sqlite_statements` in adapters/persistence/engine.py): sqlite3 runs in C and
never returns to gevent's hub, so without the pause a greenlet reading SQLite ran all its
statements in one turn, and a greenlet woken meanwhile (a live stream's change reader, a
stream it hands a change to) waited for all of them. With the pause, the other greenlets run
between the reader's statements and before a write transaction takes the lock, but never
while a greenlet holds the write lock (another greenlet asking for it would wait inside
SQLite, where the holder cannot run again)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import gevent
import pytest

from adapters.persistence import engine as engines
from adapters.persistence.engine import make_engine, make_read_engine, make_session_factory
from adapters.persistence.schema import upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from entrypoints.gunicorn_worker import make_sqlite_cooperative


@pytest.fixture
def cooperative():
    make_sqlite_cooperative()
    yield
    engines.pause_before_sqlite_statements(None)  # process-wide: leave none behind


@pytest.fixture
def new_uow(sqlite_url, cooperative):
    upgrade_schema(sqlite_url)
    engine = make_engine(sqlite_url)  # made after the worker set the pause, as in the worker
    factory = functools.partial(
        SqlAlchemyUnitOfWork,
        make_session_factory(engine),
        read_session_factory=make_session_factory(make_read_engine(engine)),
    )
    yield factory
    engine.dispose()


def test_another_greenlet_runs_between_the_statements_of_a_read(new_uow):
    order: list[str] = []

    def reader() -> None:
        with new_uow(read_only=True) as uow:
            uow.changes.latest_id()
            order.append("first read")
            uow.changes.since(0, 10)
            order.append("second read")

    def other() -> None:
        order.append("other ran")

    gevent.joinall([gevent.spawn(reader), gevent.spawn(other)], timeout=30)
    # without the pause the reader's statements all run before the other greenlet
    assert order.index("other ran") < order.index("second read")


def test_another_greenlet_runs_before_a_write_takes_the_lock(new_uow):
    order: list[str] = []

    def writer() -> None:
        with new_uow() as uow:
            uow.stream_leases.remove_expired(datetime.now(UTC))  # BEGIN IMMEDIATE first
            order.append("writing")
            uow.commit()

    def other() -> None:
        order.append("other ran")

    gevent.joinall([gevent.spawn(writer), gevent.spawn(other)], timeout=30)
    assert order == ["other ran", "writing"]


def test_no_other_greenlet_runs_while_one_holds_the_write_lock(new_uow):
    order: list[str] = []

    def other() -> None:
        order.append("other ran")

    def writer() -> None:
        with new_uow() as uow:
            uow.changes.latest_id()  # BEGIN IMMEDIATE: the lock is held from here on
            gevent.spawn(other)  # ready to run from now on
            uow.changes.since(0, 10)
            # a read-only unit of work inside the write transaction does not pause either
            with new_uow(read_only=True) as reading:
                reading.changes.latest_id()
            uow.changes.since(0, 10)
            order.append("committing")
            uow.commit()
        order.append("committed")
        # the transaction has ended: the next statement lets the other greenlet run first
        with new_uow(read_only=True) as uow:
            uow.changes.latest_id()
            order.append("read after")

    gevent.spawn(writer).join(timeout=30)
    gevent.sleep(0)
    assert order == ["committing", "committed", "other ran", "read after"]
