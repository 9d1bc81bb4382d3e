"""Estimated starts on SQLite and PostgreSQL: stored in test_runs.estimated_start_at without
a version bump, dropped for a run that left the queue, measured case durations from the
results, the queue on the change log, the queue on the dashboard; and on PostgreSQL, a cancel
that meets an estimate being written waits for it and wins."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from application.use_cases.live_updates import ReadChanges
from application.use_cases.queue_estimates import EstimateQueue
from application.use_cases.statistics import GetLabStatistics
from domain.test_runs import Observation, ResultReport, RunStatus
from tests.integration.conftest import T0


@pytest.fixture
def bench(lab):
    class Bench:
        m1 = lab.add_device("meter-01", model="EM-340")
        m2 = lab.add_device("meter-02", model="EM-340")
        case = lab.add_test_case("soak", duration_s=600, timeout_s=1200)
        env = lab.add_environment("chamber")

    return Bench


def _finish(lab, run, took_s: float) -> None:
    now = lab.clock.now()
    lab.record_result(
        run.id,
        [
            ResultReport(
                c.id,
                d.id,
                (Observation("voltage", 230),),
                started_at=now - timedelta(seconds=took_s),
                finished_at=now,
            )
            for c in run.test_cases
            for d in run.devices
        ],
    )


def test_an_estimate_is_stored_without_a_version_bump_and_cleared_by_a_cancel(lab, bench):
    busy = lab.start([bench.m1], [bench.case], bench.env)
    lab.record_started(busy.id, "runner-1")
    waiting = lab.start([bench.m1], [bench.case], bench.env)
    version = lab.scalar("SELECT version FROM test_runs WHERE id = :i", i=waiting.id)

    assert EstimateQueue(lab.new_uow, lab.clock)().written == {
        waiting.id: T0 + timedelta(seconds=600)
    }

    assert lab.get_test_run(waiting.id).estimated_start_at == T0 + timedelta(seconds=600)
    assert lab.scalar("SELECT version FROM test_runs WHERE id = :i", i=waiting.id) == version
    cancelled = lab.cancel_test_run(waiting.id, "alice").run
    assert cancelled.status is RunStatus.ABORTED
    stored = lab.scalar("SELECT estimated_start_at FROM test_runs WHERE id = :i", i=waiting.id)
    assert stored is None


def test_an_estimate_for_a_run_no_longer_waiting_is_dropped(lab, bench):
    booked = lab.start([bench.m1], [bench.case], bench.env)
    with lab.new_uow() as uow:
        uow.test_runs.set_estimated_starts({booked.id: T0})
        uow.commit()
    stored = lab.scalar("SELECT estimated_start_at FROM test_runs WHERE id = :i", i=booked.id)
    assert stored is None


def test_measured_case_durations_are_the_newest_completed_runs_spans(lab, bench):
    other = lab.add_test_case("standby", duration_s=30, timeout_s=60)
    for took_s in (100, 200, 300):
        lab.clock.advance(1000)
        _finish(lab, lab.start([bench.m1, bench.m2], [bench.case, other], bench.env), took_s)
    lab.clock.advance(1000)
    lab.cancel_test_run(lab.start([bench.m1], [bench.case], bench.env).id, "alice")
    with lab.new_uow(read_only=True) as uow:
        measured = uow.test_runs.measured_case_durations([bench.case.id, other.id, "none"], 2)
    # newest first, the last two completed runs only; the aborted one does not count
    assert measured == {bench.case.id: [300.0, 200.0], other.id: [300.0, 200.0]}


def test_the_change_log_carries_the_queue_with_its_estimates(lab, bench):
    read = ReadChanges(lab.new_uow, lab.clock)
    cursor = read.cursor()
    lab.start([bench.m1], [bench.case], bench.env)
    assert [u for u in read(cursor) if u.queue is not None] == []
    waiting = lab.start([bench.m1], [bench.case], bench.env)
    EstimateQueue(lab.new_uow, lab.clock)()
    (update,) = [u for u in read(cursor) if u.queue is not None]
    assert update.change.kind == "queue"
    assert [(i.kind, i.id, i.position, i.estimated_start_at) for i in update.queue.items] == [
        ("run", waiting.id, 1, T0 + timedelta(seconds=600))
    ]


def test_the_dashboard_counts_the_queue(lab, bench):
    lab.start([bench.m1], [bench.case], bench.env)
    lab.start([bench.m1], [bench.case], bench.env)
    lab.clock.advance(45)
    stats = GetLabStatistics(lab.new_uow, lab.clock)()
    assert (stats.waiting, stats.oldest_waiting_since, stats.longest_wait_s) == (1, T0, 45)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_cancel_waits_for_an_estimate_being_written_and_wins(lab, bench):
    busy = lab.start([bench.m1], [bench.case], bench.env)
    waiting = lab.start([bench.m1], [bench.case], bench.env)
    outcome: dict = {}
    with lab.new_uow() as writer:
        writer.test_runs.set_estimated_starts({waiting.id: T0 + timedelta(hours=1)})
        # the row is locked by the estimate now; the cancel reads it and waits for the lock

        def cancel() -> None:
            try:
                outcome["run"] = lab.cancel_test_run(waiting.id, "alice").run
            except Exception as error:  # pragma: no cover - the failure this test is for
                outcome["error"] = error

        canceller = threading.Thread(target=cancel)
        canceller.start()
        canceller.join(0.5)
        assert canceller.is_alive(), "the cancel should wait for the estimate's row lock"
        writer.commit()
    canceller.join(10)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["run"].status is RunStatus.ABORTED
    assert lab.get_test_run(waiting.id).estimated_start_at is None
    assert lab.get_test_run(busy.id).status is RunStatus.QUEUED
