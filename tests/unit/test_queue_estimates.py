"""Estimated starts on the in-memory adapters: from the remaining time of the booked runs and
the expected durations of the waiting ones (declared, or measured when there is history),
stored only when they move, without touching the run's version; the queue on the change feed;
the queue on the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.ports import QUEUE_CHANGE
from application.use_cases.devices import SetDeviceStatusRequest
from application.use_cases.live_updates import ReadChanges
from application.use_cases.queue_estimates import EstimateQueue
from application.use_cases.statistics import GetLabStatistics
from application.use_cases.test_runs import ProgressReport
from domain.run_durations import (
    MAX_MEASURED_S,
    OVERRUN_MARGIN_S,
    case_duration_s,
    expected_free_at,
)
from domain.test_runs import Observation, ResultReport, RunStatus
from tests.unit.conftest import T0

CASE_S = 600


@pytest.fixture
def bench(lab):
    class Bench:
        m1 = lab.add_device("meter-01", model="EM-340")
        m2 = lab.add_device("meter-02", model="EM-340")
        case = lab.add_test_case("soak", duration_s=CASE_S, timeout_s=2 * CASE_S)
        short = lab.add_test_case("quick", duration_s=60, timeout_s=600)
        env = lab.add_environment("chamber")

    return Bench


@pytest.fixture
def estimate(lab) -> EstimateQueue:
    return EstimateQueue(lab.new_uow, lab.clock)


def finish(lab, run, took_s: float | None = None) -> None:
    """Complete the run; with `took_s`, each case's results stamped as taking that long."""
    run = lab.get_test_run(run.id)
    now = lab.clock.now()
    stamps = {}
    if took_s is not None:
        stamps = {"started_at": now - timedelta(seconds=took_s), "finished_at": now}
    lab.record_result(
        run.id,
        [
            ResultReport(c.id, d.id, (Observation("voltage", 230),), **stamps)
            for c in run.test_cases
            for d in run.devices
        ],
    )


def started_at(lab, run_id):
    return lab.get_test_run(run_id).estimated_start_at


# -- how long a case takes, when a booked run frees its devices --------------------------


def test_a_case_takes_its_declared_time_until_enough_runs_measured_it(lab, bench) -> None:
    snapshot = lab.get_test_case(bench.case.id).snapshot()
    assert case_duration_s(snapshot) == CASE_S
    assert case_duration_s(snapshot, [100, 120]) == CASE_S  # two are not enough
    assert case_duration_s(snapshot, [100, 900, 120]) == 120  # the median, not the mean


def test_a_case_declaring_no_time_uses_whatever_was_measured_or_has_none(lab) -> None:
    snapshot = lab.add_test_case("instant", duration_s=0, timeout_s=10).snapshot()
    assert case_duration_s(snapshot) is None
    assert case_duration_s(snapshot, [42]) == 42


def test_a_running_run_frees_its_devices_after_its_remaining_cases(lab, bench) -> None:
    run = lab.start([bench.m1], [bench.case, bench.short], bench.env)
    assert expected_free_at(lab.get_test_run(run.id), T0, {}) == T0 + timedelta(seconds=660)
    lab.clock.advance(100)
    lab.record_started(run.id, "runner-1")  # started at T0+100
    running = lab.get_test_run(run.id)
    assert expected_free_at(running, lab.clock.now(), {}) == T0 + timedelta(seconds=760)
    # the first case reported in full at T0+300: the second (60 s) follows it
    lab.clock.advance(200)
    lab.record_progress(
        run.id,
        _progress([ResultReport(bench.case.id, bench.m1.id, finished_at=lab.clock.now())]),
    )
    running = lab.get_test_run(run.id)
    assert expected_free_at(running, lab.clock.now(), {}) == T0 + timedelta(seconds=360)


def test_times_a_runner_reports_from_the_far_future_change_no_estimate_into_an_error(
    lab, bench, estimate
) -> None:
    run = lab.start([bench.m1], [bench.case, bench.short], bench.env)
    lab.record_started(run.id, "runner-1")
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    lab.record_progress(
        run.id, _progress([ResultReport(bench.case.id, bench.m1.id, finished_at=far)])
    )
    running = lab.get_test_run(run.id)
    # the case counts as ended now (not in 9999): the second one's 60 s follow
    assert expected_free_at(running, T0, {}) == T0 + timedelta(seconds=60)
    waiting = lab.start([bench.m1], [bench.short], bench.env)
    assert estimate().estimated == 1
    assert started_at(lab, waiting.id) == T0 + timedelta(seconds=60)
    # nor does a measured duration of millennia: it is capped
    snapshot = lab.get_test_case(bench.short.id).snapshot()
    assert case_duration_s(snapshot, [1e15, 1e15, 1e15]) == MAX_MEASURED_S


def test_a_run_past_its_expected_end_ends_soon_and_never_after_its_deadline(lab, bench) -> None:
    run = lab.start([bench.m1], [bench.short], bench.env)
    lab.record_started(run.id, "runner-1")
    now = lab.clock.advance(500)
    running = lab.get_test_run(run.id)
    assert expected_free_at(running, now, {}) == now + timedelta(seconds=OVERRUN_MARGIN_S)
    # measured at an hour: still no later than the deadline (the reaper fails it then)
    long = expected_free_at(running, now, {bench.short.id: [3600.0] * 3})
    assert long == running.deadline


def _progress(partial):
    return ProgressReport(progress=0.5, partial_results=partial)


# -- estimating the queue -------------------------------------------------------------------


def test_waiting_runs_are_estimated_behind_the_run_that_has_their_device(
    lab, bench, estimate
) -> None:
    busy = lab.start([bench.m1], [bench.case], bench.env)
    lab.record_started(busy.id, "runner-1")
    first = lab.start([bench.m1], [bench.short], bench.env)
    second = lab.start([bench.m1, bench.m2], [bench.case], bench.env)
    assert started_at(lab, first.id) is None  # nothing until the worker estimates

    outcome = estimate()

    assert outcome.waiting == 2 and outcome.estimated == 2
    assert started_at(lab, first.id) == T0 + timedelta(seconds=CASE_S)
    assert started_at(lab, second.id) == T0 + timedelta(seconds=CASE_S + 60)


def test_an_estimate_is_written_again_only_when_it_moved_past_the_threshold(
    lab, bench, estimate
) -> None:
    busy = lab.start([bench.m1], [bench.short], bench.env)
    lab.record_started(busy.id, "runner-1")
    waiting = lab.start([bench.m1], [bench.case], bench.env)
    assert estimate().written == {waiting.id: T0 + timedelta(seconds=60)}

    lab.clock.advance(61)  # overrun: "soon" is now+60, 61 s later than the stored estimate
    moved = estimate().written
    assert moved == {waiting.id: T0 + timedelta(seconds=121)}
    lab.clock.advance(20)  # 20 s more overrun: under the threshold, nothing written
    assert estimate().written == {}
    assert started_at(lab, waiting.id) == T0 + timedelta(seconds=121)


def test_an_estimate_does_not_change_the_runs_version_and_a_cancel_after_it_works(
    lab, bench, estimate
) -> None:
    lab.start([bench.m1], [bench.case], bench.env)
    waiting = lab.start([bench.m1], [bench.case], bench.env)
    before = lab.get_test_run(waiting.id).version
    estimate()
    assert lab.get_test_run(waiting.id).version == before
    cancelled = lab.cancel_test_run(waiting.id, "alice").run
    assert cancelled.status is RunStatus.ABORTED
    assert cancelled.estimated_start_at is None  # a run out of the queue has no estimate


def test_measured_history_beats_the_declared_duration(lab, bench, estimate) -> None:
    for _ in range(3):
        done = lab.start([bench.m2], [bench.case], bench.env)
        finish(lab, done, took_s=120)
    busy = lab.start([bench.m1], [bench.case], bench.env)
    lab.record_started(busy.id, "runner-1")
    waiting = lab.start([bench.m1], [bench.short], bench.env)
    estimate()
    # the soak case declares 600 s, but the last three runs of it took 120 s
    assert started_at(lab, waiting.id) == lab.clock.now() + timedelta(seconds=120)


def test_a_run_waiting_for_a_device_in_maintenance_has_no_estimate(lab, bench, estimate) -> None:
    lab.set_device_status(
        SetDeviceStatusRequest(bench.m2.id, "maintenance", actor="alice", reason="recalibration")
    )
    waiting = lab.start([bench.m2], [bench.case], bench.env)
    outcome = estimate()
    assert outcome.waiting == 1 and outcome.estimated == 0
    assert started_at(lab, waiting.id) is None


def test_only_the_head_of_the_queue_is_estimated(lab, bench) -> None:
    lab.start([bench.m1], [bench.case], bench.env)
    first = lab.start([bench.m1], [bench.case], bench.env)
    second = lab.start([bench.m1], [bench.case], bench.env)
    EstimateQueue(lab.new_uow, lab.clock, limit=1)()
    assert started_at(lab, first.id) is not None
    assert started_at(lab, second.id) is None


# -- the queue on the change feed -----------------------------------------------------------


def queue_updates(read: ReadChanges, cursor) -> list:
    return [u.queue for u in read(cursor) if u.queue is not None]


def test_the_change_feed_tells_when_the_queue_changes(lab, bench, estimate) -> None:
    read = ReadChanges(lab.new_uow, lab.clock)
    cursor = read.cursor()
    busy = lab.start([bench.m1], [bench.case], bench.env)
    assert queue_updates(read, cursor) == []  # booked at once: the queue did not change

    first = lab.start([bench.m1], [bench.short], bench.env)
    second = lab.start([bench.m1], [bench.short], bench.env, priority="high")
    (queue,) = queue_updates(read, cursor)  # two changes, one summary per batch
    assert queue.length == 2
    assert [(i.kind, i.id, i.position) for i in queue.items] == [
        ("run", second.id, 1),
        ("run", first.id, 2),
    ]

    estimate()
    (queue,) = queue_updates(read, cursor)
    assert [i.estimated_start_at for i in queue.items] == [
        T0 + timedelta(seconds=CASE_S),
        T0 + timedelta(seconds=CASE_S + 60),
    ]
    assert estimate().written == {}
    assert queue_updates(read, cursor) == []  # nothing moved: nothing to tell

    finish(lab, busy)  # frees meter-01: the high-priority run is booked
    (queue,) = queue_updates(read, cursor)
    assert [(i.id, i.position) for i in queue.items] == [(first.id, 1)]
    lab.cancel_test_run(first.id, "alice")
    (queue,) = queue_updates(read, cursor)
    assert queue.length == 0 and queue.items == ()


def test_a_queue_change_is_logged_once_per_transaction(lab, bench) -> None:
    lab.start([bench.m1], [bench.case], bench.env)
    lab.start([bench.m1], [bench.case], bench.env)
    lab.start([bench.m1], [bench.case], bench.env)
    before = len(lab.store.changes)
    lab.set_device_status(
        SetDeviceStatusRequest(bench.m1.id, "maintenance", actor="alice", reason="drain")
    )
    # nothing entered or left the queue
    assert [c.kind for c in lab.store.changes[before:]].count(QUEUE_CHANGE) == 0
    with lab.new_uow() as uow:
        waiting = uow.test_runs.list_waiting()
        for run in waiting:
            run.abort(lab.clock.now(), "alice")
            uow.test_runs.update(run)
        uow.commit()
    assert [c.kind for c in lab.store.changes[before:]].count(QUEUE_CHANGE) == 1


# -- the dashboard -----------------------------------------------------------------------------


def test_the_dashboard_shows_the_queue_length_and_the_longest_wait(lab, bench) -> None:
    stats = GetLabStatistics(lab.new_uow, lab.clock)
    empty = stats()
    assert (empty.waiting, empty.longest_wait_s, empty.oldest_waiting_since) == (0, None, None)
    lab.start([bench.m1], [bench.case], bench.env)
    lab.start([bench.m1], [bench.case], bench.env)
    lab.clock.advance(30)
    lab.start([bench.m1], [bench.case], bench.env)
    lab.clock.advance(60)
    now = stats()
    assert now.waiting == 2
    assert now.oldest_waiting_since == T0
    assert now.longest_wait_s == 90


# -- holds are in the same queue -----------------------------------------------------------


def test_a_run_behind_an_active_hold_starts_at_its_expiry_and_a_waiting_hold_after_the_run(
    lab, bench, estimate
) -> None:
    hold = lab.hold([bench.m1], duration_s=1800)
    run = lab.start([bench.m1], [bench.short], bench.env)  # waits for the hold
    later = lab.hold([bench.m1], duration_s=600)  # waits for both
    outcome = estimate()
    assert outcome.waiting == 2
    assert started_at(lab, run.id) == T0 + timedelta(seconds=1800)
    assert lab.get_hold(later.id).estimated_start_at == T0 + timedelta(seconds=1800 + 60)

    lab.release(hold)  # the run starts; the hold behind it keeps waiting
    assert lab.get_test_run(run.id).status is RunStatus.QUEUED
    assert lab.get_test_run(run.id).estimated_start_at is None
    assert lab.get_hold(later.id).waiting
