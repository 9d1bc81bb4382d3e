"""The reference runner drained: the refusal of its claim (or a control message) makes it give
the job back and stop taking jobs, the run it has goes on, it asks again after the probe time,
and an undrain (control message, or a claim accepted again) makes it take jobs again."""

from __future__ import annotations

import json

import pytest

from adapters.runner.executors import SimulateExecutor
from adapters.runner.in_memory import InProcessCallbackClient
from application.job_contract import cancel_payload, drain_payload
from application.runner import CancelJob, Disposition, ExecuteJob, RunnerOptions, RunningJobs
from application.runner.drain import DrainState, HandleControlMessage
from application.runner.execute_job import StopReason
from application.runner.jobs import InvalidJob
from application.use_cases.runners import DrainRunner, UndrainRunner
from domain.test_runs import RunStatus
from tests.support.runner import job_bytes


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bench(lab):
    class Bench:
        d1 = lab.add_device("meter-01")
        voltage = lab.add_test_case("voltage", duration_s=0, timeout_s=60)
        chamber = lab.add_environment("chamber")

    return Bench


def runner_on(lab, runner_id: str, drain: DrainState) -> ExecuteJob:
    callbacks = InProcessCallbackClient(
        lab.record_started, lab.record_progress, lab.record_result, lab.record_failure
    )
    executors = {"simulate": SimulateExecutor(lab.clock, "7", 1.0, 0)}
    options = RunnerOptions(runner_id=runner_id, heartbeat_s=0.01)
    return ExecuteJob(callbacks, executors, lab.clock, RunningJobs(), options, drain=drain)


def test_a_drained_runner_gives_the_job_back_and_stops_taking_jobs(lab, bench) -> None:
    ticks = Ticks()
    state = DrainState("runner-a", probe_after_s=30, monotonic=ticks)
    execute = runner_on(lab, "runner-a", state)
    first = lab.start([bench.d1], [bench.voltage], bench.chamber)
    assert execute(job_bytes(first)).reason == "completed"  # registers runner-a
    DrainRunner(lab.new_uow, lab.clock, lab.ids)("runner-a", "admin@lab", "maintenance")
    assert state.takes_jobs()  # nothing told it yet (no control exchange here)

    second = lab.start([bench.d1], [bench.voltage], bench.chamber)
    outcome = execute(job_bytes(second))

    assert (outcome.disposition, outcome.reason) == (Disposition.REQUEUE, "runner_drained")
    assert "drained" in outcome.detail
    assert state.drained and not state.takes_jobs()
    assert lab.get_test_run(second.id).status is RunStatus.QUEUED  # for another runner
    ticks.now += 29.9
    assert not state.takes_jobs()
    ticks.now += 0.2
    assert state.takes_jobs()  # time to ask again with the next job

    other = runner_on(lab, "runner-b", DrainState("runner-b"))
    assert other(job_bytes(second)).reason == "completed"
    assert lab.get_test_run(second.id).runner == "runner-b"

    UndrainRunner(lab.new_uow, lab.clock, lab.ids)("runner-a")
    third = lab.start([bench.d1], [bench.voltage], bench.chamber)
    assert execute(job_bytes(third)).reason == "completed"
    assert not state.drained and state.takes_jobs()


def test_a_probe_that_is_refused_again_waits_the_probe_time_anew(lab, bench) -> None:
    ticks = Ticks()
    state = DrainState("runner-a", probe_after_s=30, monotonic=ticks)
    state.drain("an admin said so")
    ticks.now += 31
    assert state.takes_jobs()
    state.drain("devicelab refused its claim")
    assert not state.takes_jobs()


def control(state: DrainState, running: RunningJobs | None = None) -> HandleControlMessage:
    return HandleControlMessage(CancelJob(running or RunningJobs()), state)


def test_a_drain_message_for_this_runner_drains_and_undrains_it() -> None:
    state = DrainState("runner-a")
    handle = control(state)
    assert handle(json.dumps(drain_payload("runner-a", True, "maintenance")).encode())
    assert state.drained and not state.takes_jobs()
    assert handle(drain_payload("runner-a", False))
    assert not state.drained and state.takes_jobs()


def test_a_drain_message_for_another_runner_is_ignored() -> None:
    state = DrainState("runner-a")
    assert not control(state)(drain_payload("runner-b", True))
    assert not state.drained


def test_cancellations_still_reach_the_run(lab, bench) -> None:
    running = RunningJobs()
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    run_control = running.register(run.id)
    aborted = lab.cancel_test_run(run.id, "alice").run
    assert control(DrainState("runner-a"), running)(cancel_payload(aborted))
    assert run_control.reason is StopReason.CANCELLED


@pytest.mark.parametrize(
    "message",
    [
        {"contract_version": 2, "kind": "runner.drain", "runner": 5, "drained": True},
        {"contract_version": 2, "kind": "runner.drain", "runner": "runner-a", "drained": "yes"},
        {"contract_version": 9, "kind": "runner.drain", "runner": "runner-a", "drained": True},
        b"not json",
    ],
)
def test_a_broken_drain_message_is_refused(message) -> None:
    state = DrainState("runner-a")
    with pytest.raises(InvalidJob):
        control(state)(message)
    assert not state.drained
