"""The outbox claims, the change log and the statistics on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest

from adapters.auth.run_credentials import SignedRunCredentials
from adapters.identifiers import SequentialIds
from adapters.messaging.in_memory import InMemoryPublisher
from adapters.persistence import engine as engines
from adapters.persistence.repositories.change_feed import write_logged_changes
from adapters.persistence.schema import upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.job_contract import JOB_KIND
from application.use_cases.devices import SetDeviceStatusRequest
from application.use_cases.lab_version import ReadLabVersion
from application.use_cases.live_updates import ReadChanges
from application.use_cases.relay import RelayOutbox
from application.use_cases.statistics import GetLabStatistics
from domain.test_runs import Observation, ResultReport


@pytest.fixture
def small_lab(lab):
    devices = [lab.add_device(f"m{i}") for i in range(6)]
    case = lab.add_test_case("volt")
    environment = lab.add_environment()
    return lab, devices, case, environment


def relay_for(lab, publisher, batch=100):
    return RelayOutbox(
        lab.new_uow, publisher, SignedRunCredentials("k" * 40), lab.clock, "http://x", batch=batch
    )


def test_claims_hand_each_message_to_one_relay(small_lab):
    lab, devices, case, environment = small_lab
    runs = [lab.start([d], [case], environment).id for d in devices]
    now = lab.clock.now()
    with lab.new_uow() as uow:
        first = uow.outbox.claim(now, now + timedelta(seconds=30), 4)
        uow.commit()
    with lab.new_uow() as uow:
        second = uow.outbox.claim(now, now + timedelta(seconds=30), 4)
        uow.commit()
    assert [m.run_id for m in first] == runs[:4]  # oldest first
    assert [m.run_id for m in second] == runs[4:]
    with lab.new_uow() as uow:
        uow.outbox.mark_sent([(first[0].id, now), (first[1].id, now + timedelta(seconds=1))])
        for message in first[2:]:
            uow.outbox.release_claim(message.id)
        uow.commit()
    with lab.new_uow() as uow:
        again = uow.outbox.claim(now + timedelta(seconds=1), now + timedelta(seconds=30), 10)
        uow.commit()
    assert [m.run_id for m in again] == runs[2:4]
    attempts = dict(lab.rows("SELECT run_id, attempts FROM outbox"))
    assert attempts[runs[0]] == attempts[runs[1]] == attempts[runs[2]] == 1
    assert attempts[runs[4]] == 0
    # each message keeps its own confirmation time
    sent = lab.rows("SELECT run_id, sent_at FROM outbox WHERE sent_at IS NOT NULL ORDER BY 2")
    assert [run_id for run_id, _ in sent] == runs[:2] and sent[0][1] != sent[1][1]


def test_concurrent_relays_publish_every_job_exactly_once(small_lab):
    lab, devices, case, environment = small_lab
    runs = [lab.start([d], [case], environment).id for d in devices]
    publisher = InMemoryPublisher()
    barrier = threading.Barrier(3)
    errors = []

    def relay_all():
        relay = relay_for(lab, publisher, batch=2)
        try:
            barrier.wait()
            while relay().sent:
                pass
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=relay_all) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    published = [payload["run_id"] for kind, payload in publisher.published if kind == JOB_KIND]
    assert sorted(published) == sorted(runs)
    assert lab.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


def test_the_change_log_follows_devices_and_runs(small_lab):
    lab, devices, case, environment = small_lab
    read = ReadChanges(lab.new_uow, lab.clock)
    cursor = read.cursor()
    run = lab.start(devices[:2], [case], environment)
    lab.delete_device(devices[5].id)
    updates = read(cursor)
    kinds = sorted((u.change.kind, u.change.entity_id, u.change.deleted) for u in updates)
    assert kinds == sorted(
        [
            ("device", devices[0].id, False),
            ("device", devices[1].id, False),
            ("run", run.id, False),
            ("device", devices[5].id, True),
        ]
    )
    by_id = {u.change.entity_id: u for u in updates}
    assert by_id[devices[0].id].device.status.value == "in_test"
    assert by_id[run.id].run.status.value == "queued"
    assert by_id[devices[5].id].device is None
    assert read(cursor) == []  # nothing twice
    resumed = read.cursor(0)
    assert {u.change.entity_id for u in read(resumed)} >= {run.id, devices[0].id}


def test_the_change_log_is_read_while_another_process_holds_the_write_lock_on_sqlite(
    sqlite_url, clock, lab_factory, monkeypatch
):
    """The change reader of the live streams reads without the write lock. It took it
    (BEGIN IMMEDIATE) four times a second in every API process, and waited inside SQLite,
    the whole gevent worker with it, whenever the devicelab worker or the other API process
    was writing."""
    monkeypatch.setattr(engines, "SQLITE_BUSY_TIMEOUT_S", 0.2)  # a refusal comes quickly
    upgrade_schema(sqlite_url)
    engine = engines.make_engine(sqlite_url)
    lab = lab_factory(
        functools.partial(SqlAlchemyUnitOfWork, engines.make_session_factory(engine)),
        clock,
        SequentialIds(),
        engine,
    )
    read = ReadChanges(lab.new_uow, lab.clock)
    device = lab.add_device("m0")
    other_process = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")  # holds the write lock from here on
        cursor = read.cursor(0)
        assert [u.change.entity_id for u in read(cursor)] == [device.id]
    finally:
        other_process.close()
        engine.dispose()


def test_statistics_count_and_rank(small_lab):
    lab, devices, case, environment = small_lab
    other = lab.add_test_case("standby", criteria=(("power", "<", 2.0),))
    for index, voltage in enumerate([230, 250, 260]):
        run = lab.start([devices[index]], [case, other], environment)
        lab.record_result(
            run.id,
            [
                ResultReport(case.id, devices[index].id, (Observation("voltage", voltage),)),
                ResultReport(other.id, devices[index].id, (Observation("power", 1.0),)),
            ],
        )
    lab.start([devices[3]], [case], environment)
    lab.set_device_status(SetDeviceStatusRequest(devices[4].id, "maintenance", "new probe"))
    stats = GetLabStatistics(lab.new_uow, lab.clock)()
    assert stats.devices_by_status == {
        "available": 4,
        "in_test": 1,
        "held": 0,
        "offline": 0,
        "maintenance": 1,
        "retired": 0,
    }
    assert stats.runs_by_status["completed"] == 3 and stats.runs_by_status["queued"] == 1
    today = lab.clock.now().date().isoformat()
    assert sorted(v for d, v, n in stats.verdicts_by_day if d == today for _ in range(n)) == [
        "fail",
        "fail",
        "pass",
    ]
    assert stats.most_failing_test_cases == [(case.id, "volt", 2, 3)]
    assert len(stats.days) == 30 and stats.days[-1] == today


def test_concurrent_duplicate_results_complete_once_and_release_once(small_lab):
    lab, devices, case, environment = small_lab
    run = lab.start(devices[:2], [case], environment)
    reports = [
        ResultReport(case.id, devices[0].id, (Observation("voltage", 230),)),
        ResultReport(case.id, devices[1].id, (Observation("voltage", 231),)),
    ]
    barrier = threading.Barrier(10)
    outcomes, errors = [], []

    def report():
        barrier.wait()
        try:
            outcomes.append(lab.record_result(run.id, reports))
        except Exception as error:  # a lost race must be a clean, retryable conflict
            errors.append(error)

    threads = [threading.Thread(target=report) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(type(e).__name__ == "ConcurrentUpdate" for e in errors), errors
    assert sum(1 for o in outcomes if o.changed) == 1
    released = [d for o in outcomes for d in o.released_device_ids]
    assert sorted(released) == sorted(d.id for d in devices[:2])  # each device freed once
    history = lab.rows(
        "SELECT device_id FROM device_status_changes WHERE run_id = :run AND to_status = 'available'",
        run=run.id,
    )
    assert sorted(r[0] for r in history) == sorted(d.id for d in devices[:2])
    assert lab.get_test_run(run.id).verdict.value == "pass"


def test_the_log_position_moves_for_a_change_committed_late_below_the_latest_id(small_lab):
    """Ids are handed out at insert: a transaction that commits after a later one leaves the
    latest id as it was. The position (the lists' ETags) must move all the same, or a list
    read before that commit would be answered 304 with the change missing for good."""
    lab, devices, _case, _environment = small_lab
    read_position = ReadLabVersion(lab.new_uow)
    if lab.engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs one writing transaction at a time: commits cannot overtake")
    with lab.new_uow() as late:
        device = late.devices.get(devices[0].id)
        device.update_details(lab.clock.now(), location="late")
        late.devices.update(device)
        # the id is taken now (written just before commit, as every change log row is)
        write_logged_changes(late.session)
        lab.update_device(devices[1].id, {"location": "early"})  # commits above it
        before = read_position()
        latest = lab.scalar("SELECT max(id) FROM change_log")
        late.commit()
    assert lab.scalar("SELECT max(id) FROM change_log") == latest  # the latest id stayed
    assert read_position() != before
    after = read_position()
    assert read_position() == after  # and it stays put while nothing changes


def test_a_purge_keeps_the_newest_change_so_no_id_comes_back(small_lab):
    """SQLite gives a new row the id after the largest one left: a purge of the whole log
    made the next change id 1 again, and a position (an ETag, a kept device list answer)
    of long ago could pass for the lab as it is now."""
    lab, devices, _case, _environment = small_lab
    newest = lab.scalar("SELECT max(id) FROM change_log")
    with lab.new_uow() as uow:
        assert uow.changes.purge(datetime.now(UTC) + timedelta(days=1)) >= 1
        uow.commit()
    assert lab.scalar("SELECT count(*) FROM change_log") == 1
    assert lab.scalar("SELECT max(id) FROM change_log") == newest
    lab.update_device(devices[0].id, {"location": "after the purge"})
    assert lab.scalar("SELECT max(id) FROM change_log") > newest


def test_the_log_position_moves_with_catalog_changes(small_lab):
    lab, _devices, case, _environment = small_lab
    read_position = ReadLabVersion(lab.new_uow)
    before = read_position()
    lab.update_test_case(case.id, {"name": "volt 2"}, may_define_execution=True)
    after_case = read_position()
    lab.add_environment("second chamber")
    assert len({before, after_case, read_position()}) == 3
