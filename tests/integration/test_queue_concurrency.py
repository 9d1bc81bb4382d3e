"""Runs that wait, started in parallel on PostgreSQL while two scheduling passes run at
once: the queue lock keeps every pass and every start to its turn, so no device is ever booked
by two runs at a time (checked by SQL over the whole status history: per device, each
reservation is released by its run before the next one), nothing is booked piecemeal, and
every run ends up started."""

from __future__ import annotations

import random
from typing import Any

import pytest

from adapters.identifiers import UuidGenerator
from application.use_cases.scheduling import ScheduleWaitingRuns, schedule_in
from application.use_cases.test_runs import StartTestRunRequest
from domain.scheduling import DeviceRequest
from domain.test_runs import RunStatus, TestRun
from tests.support.booking_checks import history_violations, live_violations
from tests.support.concurrency import fire_together

STARTERS = 10
ROUNDS = 8
DEVICES = 6


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_parallel_starts_and_two_passes_at_once_never_overlap_bookings(
    lab: Any, new_uow: Any
) -> None:
    devices = [lab.add_device(f"meter-{n:02d}", model="EM-340").id for n in range(DEVICES)]
    case = lab.add_test_case("voltage").id
    environment = lab.add_environment().id
    scheduling_pass = ScheduleWaitingRuns(new_uow, lab.clock, UuidGenerator())
    pick = random.Random(20261201)
    started: list[str] = []
    for round_number in range(ROUNDS):
        requests = []
        for _ in range(STARTERS):
            if pick.random() < 0.5:
                requests.append(StartTestRunRequest([case], environment, pick.sample(devices, 2)))
            else:
                wanted = [DeviceRequest(model="EM-340", count=pick.randint(1, 3))]
                requests.append(
                    StartTestRunRequest([case], environment, [], device_requests=wanted)
                )
        calls = [(lambda r=r: lab.start_test_run(r)) for r in requests]
        calls += [scheduling_pass, scheduling_pass]
        outcomes = fire_together(calls)
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert errors == [], f"round {round_number}: {errors!r}"
        runs = [o for o in outcomes if isinstance(o, TestRun)]
        assert all(r.status in (RunStatus.WAITING, RunStatus.QUEUED) for r in runs)
        assert live_violations(lab.rows) == {}, f"round {round_number}"
        assert (
            lab.rows(  # all or nothing: a waiting run has no booking
                "SELECT b.run_id FROM test_run_devices b JOIN test_runs r ON r.id = b.run_id "
                "WHERE r.status = 'waiting'"
            )
            == []
        )
        # finish what is booked until the queue is empty; each end books for the queue
        while True:
            queued = lab.rows("SELECT id FROM test_runs WHERE status = 'queued' ORDER BY id")
            if not queued:
                break
            for row in queued:
                started.append(row.id)
                lab.cancel_test_run(row.id, by="load-test")
            assert live_violations(lab.rows) == {}
        assert lab.scalar("SELECT count(*) FROM test_runs WHERE status = 'waiting'") == 0
    assert len(started) == ROUNDS * STARTERS  # every run got its devices in the end
    assert history_violations(lab.rows) == []


def test_a_waiting_run_is_stored_in_order_and_booked_when_its_device_frees(lab: Any) -> None:
    meter = lab.add_device("meter-01", model="EM-340")
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    first = lab.start([meter], [case], environment)
    low = lab.start(
        [],
        [case],
        environment,
        priority="low",
        device_requests=[DeviceRequest(role="meter", model="EM-340")],
    )
    high = lab.start([meter], [case], environment, priority="high", queue_timeout_s=600)
    with lab.new_uow() as uow:
        assert [r.id for r in uow.test_runs.list_waiting()] == [high.id, low.id]
        stored = uow.test_runs.get(low.id)
    assert stored.device_requests == (DeviceRequest(role="meter", model="EM-340"),)
    assert stored.priority.value == "low" and stored.devices == ()

    lab.cancel_test_run(first.id, by="alice")

    booked = lab.get_test_run(high.id)
    assert booked.status is RunStatus.QUEUED and booked.device_ids == (meter.id,)
    lab.cancel_test_run(high.id, by="alice")
    booked = lab.get_test_run(low.id)
    assert [(d.id, d.role) for d in booked.devices] == [(meter.id, "meter")]
    assert lab.rows("SELECT role FROM test_run_devices WHERE run_id = :r", r=low.id)[0].role == (
        "meter"
    )


def test_a_pass_leaves_alone_a_run_cancelled_while_it_decided(lab: Any, new_uow: Any) -> None:
    meter = lab.add_device("meter-01")
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    first = lab.start([meter], [case], environment)
    waiting = lab.start([meter], [case], environment)
    with new_uow() as uow:
        stale = uow.test_runs.list_waiting()  # what a slow pass read
    lab.cancel_test_run(waiting.id, by="alice")
    lab.cancel_test_run(first.id, by="alice")  # the meter is free again

    with new_uow() as uow:
        uow.test_runs.list_waiting = lambda: stale
        outcome = schedule_in(uow, UuidGenerator(), lab.clock.now())
        uow.commit()

    assert outcome.started == []
    assert lab.get_test_run(waiting.id).status is RunStatus.ABORTED
    assert lab.get_device(meter.id).held_by is None
    jobs = "SELECT count(*) FROM outbox WHERE run_id = :r AND kind = 'test_run.job'"
    assert lab.scalar(jobs, r=waiting.id) == 0
