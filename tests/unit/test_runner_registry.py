"""The runner registry on the in-memory adapters: runners register through their reports,
online turns silent after the setting, runs done and failures count how the runs they had
claimed ended, and a drained runner's next claim is refused while the run it has finishes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.errors import NotFound
from application.job_contract import DRAIN_KIND
from application.use_cases.runners import (
    DrainRunner,
    GetRunner,
    ListRunners,
    UndrainRunner,
)
from application.use_cases.test_runs import ProgressReport
from domain.errors import InvalidValue, RunClaimed, RunnerDrained
from domain.runners import Runner, RunnerInfo, RunnerState
from domain.test_runs import Observation, ResultReport, RunStatus
from tests.unit.conftest import T0

SILENT_AFTER_S = 60
INFO = RunnerInfo("bench-pc-3", "0.1.0", ("command", "simulate"))


@pytest.fixture
def registry(lab):
    uow, clock, ids = lab.new_uow, lab.clock, lab.ids

    class Registry:
        list = ListRunners(uow, clock, SILENT_AFTER_S)
        get = GetRunner(uow, clock, SILENT_AFTER_S)
        drain = DrainRunner(uow, clock, ids, SILENT_AFTER_S)
        undrain = UndrainRunner(uow, clock, ids, SILENT_AFTER_S)

    return Registry


@pytest.fixture
def bench(lab):
    class Bench:
        d1 = lab.add_device("meter-01")
        d2 = lab.add_device("meter-02")
        voltage = lab.add_test_case("voltage", timeout_s=600)
        chamber = lab.add_environment("chamber")

    return Bench


def result_for(run, device, value=230.0):
    return ResultReport(
        test_case_id=run.test_cases[0].id,
        device_id=device.id,
        observations=(Observation("voltage", value),),
    )


# -- the rules ------------------------------------------------------------------------------


def test_a_runner_is_online_until_silent_for_longer_than_the_setting() -> None:
    runner = Runner.first_report("r1", T0, INFO)
    assert runner.state(T0 + timedelta(seconds=SILENT_AFTER_S), SILENT_AFTER_S) is (
        RunnerState.ONLINE
    )
    assert runner.state(T0 + timedelta(seconds=SILENT_AFTER_S + 0.1), SILENT_AFTER_S) is (
        RunnerState.SILENT
    )
    runner.heard(T0 + timedelta(seconds=100), RunnerInfo())
    assert runner.state(T0 + timedelta(seconds=101), SILENT_AFTER_S) is RunnerState.ONLINE


def test_a_report_that_says_nothing_keeps_what_the_runner_said_before() -> None:
    runner = Runner.first_report("r1", T0, INFO)
    runner.heard(T0 + timedelta(seconds=5), RunnerInfo())
    assert (runner.host, runner.version, runner.executors) == (
        "bench-pc-3",
        "0.1.0",
        ("command", "simulate"),
    )
    runner.heard(T0 + timedelta(seconds=6), RunnerInfo(version="0.2.0"))
    assert runner.version == "0.2.0" and runner.host == "bench-pc-3"
    # an older report arriving late does not move the last seen time back
    runner.heard(T0, RunnerInfo())
    assert runner.last_seen_at == T0 + timedelta(seconds=6)


@pytest.mark.parametrize("runner_id", ["", "   ", "x" * 201])
def test_a_runner_id_must_be_named_and_bounded(runner_id) -> None:
    with pytest.raises(InvalidValue):
        Runner.first_report(runner_id, T0, INFO)


@pytest.mark.parametrize(
    "info",
    [
        {"host": "h" * 201},
        {"version": "v" * 101},
        {"executors": ("e",) * 21},
        {"executors": ("",)},
    ],
)
def test_what_a_runner_says_about_itself_is_bounded(info) -> None:
    with pytest.raises(InvalidValue):
        RunnerInfo(**info)


def test_drain_and_undrain_say_whether_they_changed_anything() -> None:
    runner = Runner.first_report("r1", T0, INFO)
    assert runner.drain("admin@lab", T0, "firmware update of the bench PC")
    assert not runner.drain("other@lab", T0)
    assert (runner.drained_by, runner.drain_reason) == (
        "admin@lab",
        "firmware update of the bench PC",
    )
    assert runner.undrain() and not runner.undrain()
    assert (runner.drained, runner.drained_by, runner.drained_at) == (False, "", None)


# -- registration through reports -----------------------------------------------------------


def test_the_first_started_registers_the_runner_with_what_it_says(lab, bench, registry) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id, "r1", INFO)

    (view,) = registry.list()
    assert view.runner.id == "r1" and view.runner.host == "bench-pc-3"
    assert view.runner.executors == ("command", "simulate")
    assert view.runner.first_seen_at == view.runner.last_seen_at == T0
    assert view.state is RunnerState.ONLINE
    assert view.busy and view.current_run_ids == [run.id]


def test_progress_moves_last_seen_and_silence_shows(lab, bench, registry) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id, "r1", INFO)
    lab.clock.advance(30)
    lab.record_progress(run.id, ProgressReport(0.5, "half", runner="r1"))
    assert registry.get("r1").runner.last_seen_at == T0 + timedelta(seconds=30)

    lab.clock.advance(SILENT_AFTER_S + 1)
    view = registry.get("r1")
    assert view.state is RunnerState.SILENT and view.busy  # silent, its run still claimed


def test_an_older_runner_that_names_nobody_registers_nothing(lab, bench, registry) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id)
    lab.record_progress(run.id, ProgressReport(0.5, "half"))
    assert registry.list() == []


def test_runs_done_and_failures_count_how_its_runs_ended(lab, bench, registry) -> None:
    completed = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(completed.id, "r1", INFO)
    lab.record_result(completed.id, [result_for(completed, bench.d1, value=250.0)])  # fails
    failed = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(failed.id, "r1")
    lab.record_failure(failed.id, "the bench PSU did not answer")
    cancelled = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(cancelled.id, "r1")
    lab.cancel_test_run(cancelled.id, "alice")
    expired = lab.start([bench.d2], [bench.voltage], bench.chamber)
    lab.record_started(expired.id, "r1")
    lab.clock.advance(10_000)
    assert lab.expire_overdue_runs() == [expired.id]

    view = registry.get("r1")
    # a verdict `fail` is the devices' failure, a cancel nobody's: only failed and expired
    assert (view.runner.runs_done, view.runner.failures) == (4, 2)
    assert not view.busy
    assert [r.id for r in view.recent_runs] == [expired.id, cancelled.id, failed.id, completed.id]
    assert lab.get_test_run(expired.id).status is RunStatus.FAILED


def test_a_run_taken_over_counts_for_the_runner_that_finished_it(lab, bench, registry) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id, "r1")
    lab.clock.advance(lab.claim_lease_s + 1)
    lab.record_started(run.id, "r2")
    lab.record_result(run.id, [result_for(run, bench.d1)])
    assert registry.get("r1").runner.runs_done == 0
    assert registry.get("r2").runner.runs_done == 1


def test_an_unknown_runner_is_not_found(registry) -> None:
    with pytest.raises(NotFound):
        registry.get("nobody")
    with pytest.raises(NotFound):
        registry.drain("nobody", "admin@lab")
    with pytest.raises(NotFound):
        registry.undrain("nobody")


# -- drain -------------------------------------------------------------------------------------


def test_a_drained_runner_gets_no_new_run_and_another_runner_does(lab, bench, registry) -> None:
    first = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(first.id, "r1", INFO)
    view = registry.drain("r1", "admin@lab", "bench PC maintenance")
    assert view.runner.drained and view.busy
    (message,) = lab.outbox(DRAIN_KIND)
    assert message.payload == {
        "contract_version": 2,
        "kind": DRAIN_KIND,
        "runner": "r1",
        "drained": True,
        "reason": "bench PC maintenance",
    }

    second = lab.start([bench.d2], [bench.voltage], bench.chamber)
    with pytest.raises(RunnerDrained) as refused:
        lab.record_started(second.id, "r1")
    assert isinstance(refused.value, RunClaimed) and refused.value.retry_after_s is None
    assert refused.value.code == "run_claimed" and refused.value.reason == "runner_drained"
    assert "drained" in refused.value.message
    assert lab.get_test_run(second.id).status is RunStatus.QUEUED
    # the refused claim still counts as a word from the runner
    lab.clock.advance(5)
    with pytest.raises(RunnerDrained):
        lab.record_started(second.id, "r1")
    assert registry.get("r1").runner.last_seen_at == T0 + timedelta(seconds=5)

    lab.record_started(second.id, "r2")
    assert lab.get_test_run(second.id).runner == "r2"

    # the run it had goes on and finishes normally
    lab.record_started(first.id, "r1")  # a repeat
    lab.record_progress(first.id, ProgressReport(0.5, "half", runner="r1"))
    lab.record_result(first.id, [result_for(first, bench.d1)])
    assert lab.get_test_run(first.id).status is RunStatus.COMPLETED
    assert registry.get("r1").runner.runs_done == 1


def test_an_undrained_runner_takes_runs_again(lab, bench, registry) -> None:
    first = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(first.id, "r1")
    lab.record_result(first.id, [result_for(first, bench.d1)])
    registry.drain("r1", "admin@lab")
    assert registry.drain("r1", "admin@lab").runner.drained  # a repeat
    assert len(lab.outbox(DRAIN_KIND)) == 1  # a repeat tells nobody again

    view = registry.undrain("r1")
    assert not view.runner.drained
    assert [m.payload["drained"] for m in lab.outbox(DRAIN_KIND)] == [True, False]
    second = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(second.id, "r1")
    assert lab.get_test_run(second.id).runner == "r1"


# -- the live event ----------------------------------------------------------------------------


def test_the_event_stream_says_which_runner_changed(lab, bench, registry) -> None:
    from adapters.http.events import event_text
    from application.use_cases.live_updates import ReadChanges

    read = ReadChanges(lab.new_uow, lab.clock)
    cursor = read.cursor()

    def runner_events() -> list[str]:
        return [event_text(u) for u in read(cursor) if u.change.kind == "runner"]

    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id, "r1", INFO)
    (event,) = runner_events()
    assert "event: runner\n" in event and event.endswith('data: {"id":"r1"}\n\n')

    lab.record_progress(run.id, ProgressReport(0.5, "half", runner="r1"))  # a heartbeat
    assert runner_events() == []
    registry.drain("r1", "admin@lab")
    assert len(runner_events()) == 1
