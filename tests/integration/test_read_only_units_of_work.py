"""Read-only units of work (`uow(read_only=True)`): no commit, no transaction on PostgreSQL (a
pool of autocommit connections), no write lock on SQLite; a writer's uncommitted changes stay
invisible to them."""

from __future__ import annotations

import functools
import sqlite3
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from adapters.persistence.engine import make_read_engine, make_session_factory
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import DeviceFilter
from application.use_cases.devices import ListDevices


@pytest.fixture(params=["own pool", "same pool"])
def read_uow(request: pytest.FixtureRequest, engine: sa.Engine, session_factory: Any) -> Any:
    """Read-only units of work as the container builds them (sessions on `make_read_engine`),
    and as a bare factory without one (the options are set on the connection)."""
    if request.param == "same pool":
        yield functools.partial(SqlAlchemyUnitOfWork, session_factory, read_only=True)
        return
    read_engine = make_read_engine(engine)
    yield functools.partial(
        SqlAlchemyUnitOfWork,
        session_factory,
        read_only=True,
        read_session_factory=make_session_factory(read_engine),
    )
    if read_engine is not engine:
        read_engine.dispose()


def test_a_read_only_unit_of_work_refuses_to_commit(lab: Any, read_uow: Any) -> None:
    lab.add_device("meter-1")
    with read_uow() as uow:
        assert [d.name for d in uow.devices.list(DeviceFilter(), 10, None)] == ["meter-1"]
        with pytest.raises(RuntimeError, match="read-only"):
            uow.commit()


def test_reads_hold_no_transaction_on_postgres_and_no_lock_on_sqlite(
    lab: Any, read_uow: Any, engine: sa.Engine, database_url: str
) -> None:
    lab.add_device("meter-1")
    with read_uow() as uow:
        assert uow.devices.list(DeviceFilter(), 10, None)
        # on PostgreSQL with a pool of its own the unit of work runs on a Connection, not a
        # Session (adapters/persistence/unit_of_work.py)
        if isinstance(uow.session, sa.Connection):
            connection = uow.session.connection.dbapi_connection
        else:
            connection = uow.session.connection().connection.dbapi_connection
        if engine.dialect.name == "postgresql":
            assert connection.autocommit is True
        else:
            # a deferred transaction: another connection can take the write lock at once
            other = sqlite3.connect(make_url(database_url).database, timeout=0)
            try:
                other.isolation_level = None
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
            finally:
                other.close()
    with lab.new_uow() as uow:  # transactions are untouched
        uow.devices.list(DeviceFilter(), 10, None)
        if engine.dialect.name == "postgresql":
            assert uow.session.connection().connection.dbapi_connection.autocommit is False


def test_a_reader_neither_waits_for_a_writer_nor_sees_its_uncommitted_changes(
    lab: Any, read_uow: Any
) -> None:
    """On SQLite every writing transaction takes the write lock first (BEGIN IMMEDIATE), so a
    reader that did the same would wait for the writer; a read-only one must not."""
    device = lab.add_device("meter-1")
    list_devices = ListDevices(read_uow)
    seen: list[list[str]] = []
    reader = threading.Thread(
        target=lambda: seen.append([d.name for d in list_devices(DeviceFilter()).items])
    )
    with lab.new_uow() as writer:
        held = writer.devices.get_many_for_update([device.id])[0]
        held.name = "renamed-meanwhile"
        writer.devices.update(held)  # the write lock is held until the block ends
        reader.start()
        reader.join(timeout=10)  # a reader waiting for the lock would still be waiting
        finished_while_writer_held_the_lock = not reader.is_alive()
    reader.join()
    assert finished_while_writer_held_the_lock
    assert seen == [["meter-1"]]
