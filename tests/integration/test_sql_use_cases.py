"""The use cases on the SQL adapters, on SQLite and PostgreSQL: a run's whole life, and the
race that matters most — many people starting runs on the same devices at the same moment."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from adapters.identifiers import UuidGenerator
from application.errors import AlreadyExists
from application.job_contract import CANCEL_KIND, JOB_KIND, job_payload
from application.ports import RunFilter
from application.use_cases.devices import RegisterDevice, RegisterDeviceRequest
from application.use_cases.test_runs import (
    CancelTestRun,
    ProgressReport,
    RecordRunResult,
    StartTestRun,
    StartTestRunRequest,
)
from domain.devices import DeviceStatus
from domain.errors import DeviceUnavailable, InvalidTransition, RunAlreadyFinished
from domain.test_runs import Observation, ResultReport, RunStatus, TestRun, Verdict
from tests.support.concurrency import fire_together


def _statuses(lab: Any, *devices: Any) -> list[str]:
    return [lab.get_device(d.id).status.value for d in devices]


def test_a_run_from_start_to_result_releases_its_devices(lab: Any) -> None:
    m1 = lab.add_device("meter-1", firmware_version="1.0", labels={"site": "berlin"})
    m2 = lab.add_device("meter-2", firmware_version="2.0")
    case = lab.add_test_case("voltage", criteria=[("voltage", "<=", 240.0), ("current", "<", 10)])
    environment = lab.add_environment("hot", variables={"temp": "40"})

    run = lab.start([m1, m2], [case], environment, parameters={"load": 0.5}, started_by="alice")
    assert run.status is RunStatus.QUEUED
    assert _statuses(lab, m1, m2) == ["in_test", "in_test"]
    assert lab.get_device(m1.id).held_by == run.id
    jobs = lab.rows("SELECT kind, run_id, payload, sent_at FROM outbox")
    assert [(j.kind, j.run_id, j.sent_at) for j in jobs] == [(JOB_KIND, run.id, None)]
    stored = lab.get_test_run(run.id)
    assert _payload(jobs[0].payload) == job_payload(stored) == job_payload(run)

    lab.clock.advance(5)
    started = lab.record_started(run.id)
    assert started.changed and started.run.status is RunStatus.RUNNING
    assert not lab.record_started(run.id).changed  # a repeat changes nothing

    lab.clock.advance(5)
    partial = [
        ResultReport(case.id, m1.id, (Observation("voltage", 231), Observation("current", 2)))
    ]
    lab.record_progress(run.id, ProgressReport(0.5, "half way", partial))
    assert lab.get_test_run(run.id).progress == 0.5

    lab.clock.advance(5)
    reports = [
        partial[0],
        ResultReport(case.id, m2.id, (Observation("voltage", 250), Observation("current", 2))),
    ]
    outcome = lab.record_result(run.id, reports)
    assert outcome.changed
    assert sorted(outcome.released_device_ids) == sorted([m1.id, m2.id])
    finished = lab.get_test_run(run.id)
    assert finished.status is RunStatus.COMPLETED and finished.verdict is Verdict.FAIL
    assert finished.results == outcome.run.results
    assert finished.finished_at == lab.clock.now()
    assert _statuses(lab, m1, m2) == ["available", "available"]
    assert not lab.record_result(run.id, reports).changed  # the same report again: no change

    history = lab.device_history(m1.id)
    assert [(h.from_status.value, h.to_status.value, h.run_id) for h in history] == [
        ("in_test", "available", run.id),
        ("available", "in_test", run.id),
    ]
    assert [r.id for r in lab.list_test_runs(RunFilter(firmware="2.0")).items] == [run.id]


def _payload(value: Any) -> Any:
    # SQLite hands JSON back parsed as well, but be explicit about what we compare
    import json

    return json.loads(value) if isinstance(value, str) else value


def test_cancel_expiry_and_silence_on_sql(lab: Any) -> None:
    m1, m2, m3 = (lab.add_device(f"meter-{n}") for n in range(1, 4))
    case = lab.add_test_case("voltage")
    environment = lab.add_environment()
    cancelled = lab.start([m1], [case], environment)
    overdue = lab.start([m2], [case], environment)

    outcome = lab.cancel_test_run(cancelled.id, "bob", "wrong devices")
    assert outcome.changed and outcome.released_device_ids == [m1.id]
    kinds = lab.rows(
        "SELECT kind FROM outbox WHERE run_id = :r ORDER BY created_at", r=cancelled.id
    )
    assert sorted(k.kind for k in kinds) == sorted([JOB_KIND, CANCEL_KIND])
    with pytest.raises(DeviceUnavailable) as refused:
        lab.start([m2, m3], [case], environment, when_busy="reject")
    assert refused.value.unavailable == {m2.id: "in_test"}
    assert lab.get_device(m3.id).status is DeviceStatus.AVAILABLE  # all or nothing

    lab.record_heartbeat(m3.id, "9.9")
    lab.clock.advance(3600)
    assert lab.expire_overdue_runs() == [overdue.id]
    expired = lab.get_test_run(overdue.id)
    assert (expired.status, expired.failure_reason) == (RunStatus.FAILED, "timeout")
    assert lab.get_device(m2.id).status is DeviceStatus.AVAILABLE
    assert lab.mark_silent_offline() == [m3.id]
    assert lab.get_device(m3.id).firmware_version == "9.9"
    assert lab.get_device(m3.id).status is DeviceStatus.OFFLINE


def test_a_refused_start_writes_nothing(lab: Any) -> None:
    busy, free = lab.add_device("busy"), lab.add_device("free")
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    lab.start([busy], [case], environment)
    before = [lab.scalar(f"SELECT count(*) FROM {t}") for t in ("test_runs", "outbox")]
    with pytest.raises(DeviceUnavailable):
        lab.start([free, busy], [case], environment, when_busy="reject")
    after = [lab.scalar(f"SELECT count(*) FROM {t}") for t in ("test_runs", "outbox")]
    assert before == after == [1, 1]
    assert lab.get_device(free.id).held_by is None


# -- the race ---------------------------------------------------------------------------------

CLUSTERS = 4
PER_CLUSTER = 5  # plus one "bridge" thread per cluster: 24 threads at once
ROUNDS = 3


def _assert_bookings_consistent(lab: Any) -> None:
    """What the database says, whatever the use cases returned."""
    double_booked = lab.rows(
        "SELECT d.device_id FROM test_run_devices d JOIN test_runs r ON r.id = d.run_id "
        "WHERE r.status IN ('queued', 'running') GROUP BY d.device_id HAVING count(*) > 1"
    )
    assert double_booked == []
    strays = lab.rows(
        "SELECT d.id, d.held_by, r.status FROM devices d LEFT JOIN test_runs r ON r.id = d.held_by "
        "WHERE d.status = 'in_test' AND (r.id IS NULL OR r.status <> 'queued')"
    )
    assert strays == []
    mismatched = lab.rows(
        "SELECT id FROM devices WHERE (status = 'in_test') <> (held_by IS NOT NULL)"
    )
    assert mismatched == []
    unbooked = lab.rows(
        "SELECT d.device_id FROM test_run_devices d JOIN test_runs r ON r.id = d.run_id "
        "JOIN devices v ON v.id = d.device_id "
        "WHERE r.status = 'queued' AND (v.held_by IS NULL OR v.held_by <> r.id)"
    )
    assert unbooked == []


def test_concurrent_starts_on_overlapping_devices_book_each_device_once(
    lab: Any, new_uow: Any
) -> None:
    """Every thread has its own unit of work on one shared engine. Threads of a cluster all
    want the cluster's hub (plus a device of their own); bridge threads want two hubs. Each
    hub must end up held by exactly one run, everyone else must hear DeviceUnavailable, and
    the tables must agree."""
    hubs = [lab.add_device(f"hub-{k}") for k in range(CLUSTERS)]
    own = [[lab.add_device(f"own-{k}-{i}") for i in range(PER_CLUSTER)] for k in range(CLUSTERS)]
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    start = StartTestRun(new_uow, lab.clock, UuidGenerator())
    cancel = CancelTestRun(new_uow, lab.clock, UuidGenerator())
    shuffle = random.Random(20260301).shuffle
    booked = 0

    for round_ in range(ROUNDS):
        wanted = [[hubs[k].id, own[k][i].id] for k in range(CLUSTERS) for i in range(PER_CLUSTER)]
        wanted += [[hubs[k].id, hubs[(k + 1) % CLUSTERS].id] for k in range(CLUSTERS)]
        for device_ids in wanted:
            shuffle(device_ids)  # ask in any order: the locks are still taken in id order
        calls = [
            lambda ids=ids: start(
                StartTestRunRequest([case.id], environment.id, ids, {}, "race", when_busy="reject")
            )
            for ids in wanted
        ]
        outcomes = fire_together(calls)

        winners = [o for o in outcomes if isinstance(o, TestRun)]
        errors = [o for o in outcomes if not isinstance(o, TestRun)]
        assert all(isinstance(e, DeviceUnavailable) for e in errors), [repr(e) for e in errors]
        assert len(winners) + len(errors) == len(wanted)
        held = Counter(device_id for run in winners for device_id in run.device_ids)
        assert max(held.values()) == 1, f"round {round_}: a device was booked twice"
        assert all(held[hub.id] == 1 for hub in hubs), f"round {round_}: a hub went unbooked"
        for error in errors:
            assert set(error.unavailable) <= set(held)
            assert set(error.unavailable.values()) == {"in_test"}
        for run in winners:
            assert {lab.get_device(i).held_by for i in run.device_ids} == {run.id}
        _assert_bookings_consistent(lab)
        assert lab.scalar("SELECT count(*) FROM test_runs WHERE status = 'queued'") == len(winners)
        booked += len(held)
        reservations = "SELECT count(*) FROM device_status_changes WHERE to_status = 'in_test'"
        assert lab.scalar(reservations) == booked  # losers left no history behind

        for run in winners:  # free everything for the next round
            cancel(run.id, "race")
        assert lab.scalar("SELECT count(*) FROM devices WHERE held_by IS NOT NULL") == 0

    runs = lab.scalar("SELECT count(*) FROM test_runs")
    assert lab.scalar("SELECT count(*) FROM outbox WHERE kind = :k", k=JOB_KIND) == runs


def test_a_final_report_and_a_cancel_racing_release_the_devices_once(
    lab: Any, new_uow: Any
) -> None:
    devices = [lab.add_device(f"meter-{n}") for n in range(3)]
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    record_result = RecordRunResult(new_uow, lab.clock, UuidGenerator())
    cancel = CancelTestRun(new_uow, lab.clock, UuidGenerator())
    for _ in range(ROUNDS):
        run = lab.start(devices, [case], environment)
        lab.record_started(run.id)
        reports = [ResultReport(case.id, d.id, (Observation("voltage", 230),)) for d in devices]
        calls = [
            lambda run_id=run.id, reports=reports: record_result(run_id, reports),
            lambda run_id=run.id: cancel(run_id, "bob"),
        ] * 3
        outcomes = fire_together(calls)

        changed = [o for o in outcomes if not isinstance(o, Exception) and o.changed]
        assert len(changed) == 1, outcomes
        # the losers see the run already ended (the run row is locked, so nobody has to retry)
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert all(isinstance(e, RunAlreadyFinished | InvalidTransition) for e in errors), errors
        assert sorted(changed[0].released_device_ids) == sorted(d.id for d in devices)
        final = lab.get_test_run(run.id)
        assert final.status in (RunStatus.COMPLETED, RunStatus.ABORTED)
        releases = lab.scalar(
            "SELECT count(*) FROM device_status_changes WHERE run_id = :r AND to_status = 'available'",
            r=run.id,
        )
        assert releases == len(devices)
        _assert_bookings_consistent(lab)
        lab.clock.advance(1)


def test_concurrent_registrations_of_one_name_create_one_device(lab: Any, new_uow: Any) -> None:
    """However the threads interleave (use-case check or unique constraint), one device is
    created and everyone else hears AlreadyExists."""
    register = RegisterDevice(new_uow, lab.clock, UuidGenerator())
    calls = [lambda: register(RegisterDeviceRequest(name="twin-name"))] * 12
    outcomes = fire_together(calls)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(outcomes) - len(errors) == 1
    assert all(isinstance(e, AlreadyExists) for e in errors), [repr(e) for e in errors]
    assert lab.scalar("SELECT count(*) FROM devices WHERE name = 'twin-name'") == 1
