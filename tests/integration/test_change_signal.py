"""What wakes a process's change reader: a NOTIFY on PostgreSQL, sent by the transaction that
writes the change log and delivered when it commits (never for one rolled back); a poll on
SQLite. And the fan-out over the real feed on both backends.

A wait that should end at a notification is given far more time than it needs (`LONG_S`):
it returning before that is the notification; nothing here measures how fast."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.change_signal import (
    PollingChangeSignal,
    PostgresChangeSignal,
    change_signal_for,
)
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.repositories.change_feed import PENDING_CHANGES, write_logged_changes
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.use_cases.live_updates import ChangeFanout, ReadChanges
from tests.integration.conftest import T0

LONG_S = 30.0


def test_sqlite_polls_and_postgres_listens(sqlite_url):
    assert isinstance(change_signal_for(sqlite_url), PollingChangeSignal)
    assert isinstance(
        change_signal_for("postgresql+psycopg2://u:p@db.example:5432/lab"), PostgresChangeSignal
    )


def waited(signal: PostgresChangeSignal, timeout_s: float, write) -> float:
    """How long `signal.wait(timeout_s)` took, `write` done once the wait has begun."""
    signal.wait(0)  # connects and LISTENs; clears anything pending
    began = time.monotonic()
    writer = threading.Timer(0.2, write)
    writer.start()
    signal.wait(timeout_s)
    took = time.monotonic() - began
    writer.join()
    return took


@pytest.fixture
def postgres_lab(empty_postgres_url, lab_factory):
    engine = make_engine(empty_postgres_url)
    new_uow = functools.partial(SqlAlchemyUnitOfWork, make_session_factory(engine))
    yield lab_factory(new_uow, SettableClock(T0), SequentialIds(), engine), empty_postgres_url
    engine.dispose()


@pytest.mark.postgres
def test_a_committed_change_wakes_the_listener_and_a_rolled_back_one_does_not(postgres_lab):
    lab, url = postgres_lab
    signal = PostgresChangeSignal(url)

    def rolled_back():
        # the change log's rows and NOTIFY written as at a commit, then the commit fails
        session = make_session_factory(lab.engine)()
        session.info[PENDING_CHANGES] = [
            {"kind": "device", "entity_id": "never", "deleted": False, "at": T0}
        ]
        write_logged_changes(session)
        session.rollback()
        session.close()

    try:
        assert waited(signal, LONG_S, lambda: lab.add_device("meter-1")) < LONG_S
        assert waited(signal, 1.5, rolled_back) >= 1.5
        assert lab.scalar("SELECT count(*) FROM change_log") == 1
    finally:
        signal.close()


def test_the_fanout_follows_the_real_change_log(lab, database_url):
    read = ReadChanges(lab.new_uow, lab.clock)
    fanout = ChangeFanout(
        read, change_signal_for(database_url), lambda u: u.change.entity_id, safety_s=0.2
    )
    subscription = fanout.subscribe()
    try:
        devices = [lab.add_device(f"meter-{n}") for n in range(3)]
        got: list[str] = []
        deadline = time.monotonic() + LONG_S
        while len(got) < 3 and time.monotonic() < deadline:
            got.extend(r.text for r in subscription.next_batch(1))
        assert got == [d.id for d in devices]
    finally:
        subscription.close()
        fanout.signal.close()
