"""The runner registry on SQLite and PostgreSQL: registration through reports, the counts kept
as runs end, the current and recent runs read from the runs, drain refusing the next claim
(and kept across the refusal), and one change-log entry per visible change, none per
heartbeat."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from application.errors import NotFound
from application.job_contract import DRAIN_KIND
from application.use_cases.runners import DrainRunner, GetRunner, ListRunners, UndrainRunner
from application.use_cases.test_runs import ProgressReport, RecordRunFailure
from domain.errors import RunnerDrained
from domain.runners import RunnerInfo, RunnerState
from domain.test_runs import Observation, ResultReport
from tests.integration.conftest import T0

INFO = RunnerInfo("bench-pc-3", "0.1.0", ("command", "simulate"))


def _result(run: Any, device: Any) -> ResultReport:
    return ResultReport(run.test_cases[0].id, device.id, (Observation("voltage", 230.0),))


@pytest.fixture
def bench(lab: Any) -> Any:
    class Bench:
        d1, d2 = lab.add_device("meter-1"), lab.add_device("meter-2")
        case, environment = lab.add_test_case("voltage"), lab.add_environment()

    return Bench


def test_reports_register_and_count(lab: Any, new_uow: Any, bench: Any) -> None:
    get, listing = GetRunner(new_uow, lab.clock, 60), ListRunners(new_uow, lab.clock, 60)
    done = lab.start([bench.d1], [bench.case], bench.environment)
    lab.record_started(done.id, "r1", INFO)
    lab.record_result(done.id, [_result(done, bench.d1)])
    failed = lab.start([bench.d1], [bench.case], bench.environment)
    lab.record_started(failed.id, "r1")
    RecordRunFailure(new_uow, lab.clock, lab.ids)(failed.id, "PSU silent")
    running = lab.start([bench.d2], [bench.case], bench.environment)
    lab.clock.advance(10)
    lab.record_started(running.id, "r1")
    other = lab.start([bench.d1], [bench.case], bench.environment)
    lab.record_started(other.id, "r2")

    view = get("r1")
    runner = view.runner
    assert RunnerInfo(runner.host, runner.version, runner.executors) == INFO
    assert runner.first_seen_at == T0 and runner.last_seen_at == T0 + timedelta(seconds=10)
    assert (runner.runs_done, runner.failures) == (2, 1)
    assert view.current_run_ids == [running.id] and view.state is RunnerState.ONLINE
    assert [r.id for r in view.recent_runs] == [running.id, failed.id, done.id]
    assert [(v.runner.id, v.current_run_ids) for v in listing()] == [
        ("r1", [running.id]),
        ("r2", [other.id]),
    ]
    lab.clock.advance(61)
    assert get("r1").state is RunnerState.SILENT


def test_a_heartbeat_writes_no_change_log_entry(lab: Any, bench: Any) -> None:
    run = lab.start([bench.d1], [bench.case], bench.environment)
    lab.record_started(run.id, "r1", INFO)
    before = lab.scalar("SELECT count(*) FROM change_log WHERE kind = 'runner'")
    assert before >= 1
    for _ in range(3):
        lab.clock.advance(2)
        lab.record_progress(run.id, ProgressReport(0.5, "half", runner="r1"))
    assert lab.scalar("SELECT count(*) FROM change_log WHERE kind = 'runner'") == before
    lab.record_result(run.id, [_result(run, bench.d1)])
    assert lab.scalar("SELECT count(*) FROM change_log WHERE kind = 'runner'") == before + 1


def test_a_drained_runner_is_refused_its_next_claim(lab: Any, new_uow: Any, bench: Any) -> None:
    first = lab.start([bench.d1], [bench.case], bench.environment)
    lab.record_started(first.id, "r1")
    DrainRunner(new_uow, lab.clock, lab.ids, 60)("r1", "admin@lab", "maintenance")
    (payload,) = [
        json.loads(r.payload) if isinstance(r.payload, str) else r.payload
        for r in lab.rows("SELECT payload FROM outbox WHERE kind = :k", k=DRAIN_KIND)
    ]
    assert payload["runner"] == "r1" and payload["drained"] is True

    second = lab.start([bench.d2], [bench.case], bench.environment)
    lab.clock.advance(3)
    with pytest.raises(RunnerDrained):
        lab.record_started(second.id, "r1")
    stored = GetRunner(new_uow, lab.clock, 60)("r1").runner
    assert stored.drained and stored.drained_by == "admin@lab"
    assert stored.last_seen_at == T0 + timedelta(seconds=3)  # kept despite the refusal
    assert lab.get_test_run(second.id).runner == ""
    lab.record_started(second.id, "r2")
    assert lab.get_test_run(second.id).runner == "r2"
    lab.record_result(first.id, [_result(first, bench.d1)])  # its own run finishes

    UndrainRunner(new_uow, lab.clock, lab.ids, 60)("r1")
    third = lab.start([bench.d1], [bench.case], bench.environment)
    lab.record_started(third.id, "r1")
    assert lab.get_test_run(third.id).runner == "r1"


def test_unknown_runners_are_not_found(new_uow: Any, lab: Any) -> None:
    with pytest.raises(NotFound):
        GetRunner(new_uow, lab.clock, 60)("nobody")
    with pytest.raises(NotFound):
        DrainRunner(new_uow, lab.clock, lab.ids, 60)("nobody", "admin@lab")
