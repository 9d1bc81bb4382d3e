"""ExecuteJob, the runner's use case, against devicelab's own use cases on the in-memory store
(InProcessCallbackClient): what becomes of the run, and what becomes of the message."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

from adapters.runner.executors import SimulateExecutor
from adapters.runner.in_memory import InProcessCallbackClient, RecordedMetrics
from application.job_contract import cancel_payload, job_payload
from application.runner import (
    CallbackStatus,
    CancelJob,
    Disposition,
    ExecuteJob,
    ExecutionRequest,
    RunnerOptions,
    RunningJobs,
)
from application.use_cases.catalog import ExecutionInput
from application.use_cases.test_runs import ProgressReport
from domain.devices import DeviceStatus
from domain.test_runs import Observation, ResultReport, RunStatus, Verdict
from tests.support.runner import ScriptedCallbacks, reply

WAIT_S = 10  # an upper bound for waits on other threads; never reached when things work


class Recording:
    """An executor that measures a fixed voltage and remembers what it was asked."""

    def __init__(self, value: float = 230.0) -> None:
        self.value = value
        self.requests: list[ExecutionRequest] = []

    def execute(self, request, cancel, report_partial):
        self.requests.append(request)
        return [
            ResultReport(request.case.id, d.id, (Observation("voltage", self.value, "V"),))
            for d in request.devices
        ]


class Acting:
    """An executor that runs `act(request, cancel, report_partial)` and then waits to be
    stopped, as a long measurement would."""

    def __init__(self, act: Callable) -> None:
        self.act = act
        self.saw_cancel = threading.Event()

    def execute(self, request, cancel, report_partial):
        self.act(request, cancel, report_partial)
        if cancel.wait(WAIT_S):
            self.saw_cancel.set()
        return []


class Raising:
    def execute(self, request, cancel, report_partial):
        raise RuntimeError("the bench power supply did not answer")


@pytest.fixture
def bench(lab):
    class Bench:
        d1 = lab.add_device("meter-01", serial="S1", firmware_version="1.0")
        d2 = lab.add_device("meter-02")
        voltage = lab.add_test_case(
            "voltage", criteria=[("voltage", "<=", 240)], duration_s=0, timeout_s=60
        )
        current = lab.add_test_case(
            "current", criteria=[("current", "<", 16)], duration_s=0, timeout_s=60
        )
        chamber = lab.add_environment("chamber", variables={"temp_c": "40"})

    return Bench


@pytest.fixture
def runner(lab):
    """Build ExecuteJob on the lab; returns (execute_job, callbacks, running)."""

    def build(executors=None, callbacks=None, metrics=None, pause=None, **options):
        in_process = InProcessCallbackClient(
            lab.record_started, lab.record_progress, lab.record_result, lab.record_failure
        )
        callbacks = callbacks or ScriptedCallbacks(in_process)
        if isinstance(callbacks, ScriptedCallbacks) and callbacks.inner is None:
            callbacks.inner = in_process
        running = RunningJobs()
        executors = executors or {
            "simulate": SimulateExecutor(lab.clock, seed="7", pass_probability=1.0, time_factor=0)
        }
        options = {"runner_id": "runner-a", "heartbeat_s": 0.01, "stop_grace_s": WAIT_S, **options}
        execute = ExecuteJob(
            callbacks,
            executors,
            lab.clock,
            running,
            RunnerOptions(default_executor=next(iter(executors)), **options),
            metrics,
            pause or passing_time(lab),
        )
        return execute, callbacks, running

    return build


def passing_time(lab, meanwhile: Callable[[], None] = lambda: None):
    """A pause between tries of a claimed run in which the lab's clock moves on (in steps of
    at most 2 s, calling `meanwhile` after each) instead of the test waiting."""

    def pause(stop: threading.Event, seconds: float) -> bool:
        while seconds > 0 and not stop.is_set():
            step = min(2.0, seconds)
            lab.clock.advance(step)
            seconds -= step
            meanwhile()
        return stop.is_set()

    return pause


def message_for(run) -> bytes:
    payload = job_payload(run)
    payload["callback"] = {
        "base_url": f"http://devicelab.test/api/runner/test-runs/{run.id}",
        "token": "secret",
    }
    return json.dumps(payload).encode()


def start(lab, bench, cases=None, **request):
    cases = cases or [bench.voltage, bench.current]
    return lab.start([bench.d1, bench.d2], cases, bench.chamber, **request)


# -- the normal path ---------------------------------------------------------------------------


def test_a_job_runs_to_completion_and_is_acked(lab, bench, runner):
    run = start(lab, bench)
    execute, _, running = runner()

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason, outcome.run_id) == (
        Disposition.ACK,
        "completed",
        run.id,
    )
    finished = lab.get_test_run(run.id)
    assert finished.status is RunStatus.COMPLETED
    assert finished.verdict is Verdict.PASS
    assert len(finished.results) == 4
    assert {lab.get_device(d.id).status for d in (bench.d1, bench.d2)} == {DeviceStatus.AVAILABLE}
    assert running.run_ids == []


def test_pass_probability_zero_makes_the_run_fail(lab, bench, runner):
    run = start(lab, bench)
    simulate = SimulateExecutor(lab.clock, seed="7", pass_probability=0.0, time_factor=0)
    execute, _, _ = runner({"simulate": simulate})

    assert execute(message_for(run)).reason == "completed"

    finished = lab.get_test_run(run.id)
    assert finished.verdict is Verdict.FAIL
    assert {r.verdict for r in finished.results.values()} == {Verdict.FAIL}


def test_each_case_goes_to_the_executor_its_execution_names(lab, bench, runner):
    bench.current = lab.add_test_case(
        "current by command",
        criteria=[("voltage", "<=", 240)],
        duration_s=0,
        execution=ExecutionInput("command", ["/opt/lab/measure"]),
    )
    run = start(lab, bench)
    default, command = Recording(), Recording(value=250)
    execute, _, _ = runner({"simulate": default, "command": command})

    execute(message_for(run))

    assert [r.case.id for r in default.requests] == [bench.voltage.id]
    assert [r.case.id for r in command.requests] == [bench.current.id]
    assert command.requests[0].case.execution.command == ("/opt/lab/measure",)
    assert lab.get_test_run(run.id).verdict is Verdict.FAIL  # 250 V fails "<= 240"


def test_run_parameters_never_choose_the_executor(lab, bench, runner):
    hostile = {"executor": "command", "command": ["sh", "-c", "id"], "command_per_device": False}
    run = start(lab, bench, cases=[bench.voltage], parameters=hostile)
    default, command = Recording(), Recording()
    execute, _, _ = runner({"simulate": default, "command": command})

    assert execute(message_for(run)).reason == "completed"

    assert command.requests == []
    (request,) = default.requests
    assert request.case.execution.is_runner_default
    assert request.parameters == hostile  # handed over as data, nothing more


def test_the_run_parameters_reach_the_executor(lab, bench, runner):
    run = start(lab, bench, cases=[bench.voltage], parameters={"load_kw": 2.5})
    recording = Recording()
    execute, _, _ = runner({"recording": recording})

    execute(message_for(run))

    (request,) = recording.requests
    assert request.parameters["load_kw"] == 2.5
    assert request.run_id == run.id
    assert [d.id for d in request.devices] == [bench.d1.id, bench.d2.id]
    assert request.environment.variables == {"temp_c": "40"}


def test_a_device_without_a_result_is_reported_as_an_error(lab, bench, runner):
    class OneDeviceOnly:
        def execute(self, request, cancel, report_partial):
            return [
                ResultReport(request.case.id, request.devices[0].id, (Observation("voltage", 230),))
            ]

    run = start(lab, bench, cases=[bench.voltage])
    execute, _, _ = runner({"partial": OneDeviceOnly()})

    execute(message_for(run))

    results = lab.get_test_run(run.id).results
    assert results[(bench.voltage.id, bench.d1.id)].verdict is Verdict.PASS
    missing = results[(bench.voltage.id, bench.d2.id)]
    assert missing.verdict is Verdict.INCONCLUSIVE
    assert "no result" in missing.message


def test_heartbeats_carry_partial_results_while_the_executor_works(lab, bench, runner):
    seen_partial = threading.Event()

    def act(request, cancel, report_partial):
        first = request.devices[0]
        report_partial(
            ResultReport(request.case.id, first.id, (Observation("voltage", 231.5, "V"),))
        )
        # keep working until devicelab shows the partial result: a heartbeat carried it
        for _ in range(WAIT_S * 100):
            if (request.case.id, first.id) in lab.get_test_run(request.run_id).results:
                seen_partial.set()
                return
            cancel.wait(0.01)

    class PartialThenDone:
        def execute(self, request, cancel, report_partial):
            act(request, cancel, report_partial)
            return [
                ResultReport(request.case.id, d.id, (Observation("voltage", 231.5, "V"),))
                for d in request.devices
            ]

    run = start(lab, bench, cases=[bench.voltage])
    execute, callbacks, _ = runner({"partial": PartialThenDone()})

    assert execute(message_for(run)).reason == "completed"

    assert seen_partial.is_set()
    heartbeats = callbacks.reports("progress")
    assert heartbeats and all(0 <= call.args[1] <= 1 for call in heartbeats)
    assert lab.get_test_run(run.id).status is RunStatus.COMPLETED


def test_progress_moves_within_a_test_case_by_its_planned_duration(lab, bench, runner):
    long = lab.add_test_case("soak", criteria=[("voltage", "<=", 240)], duration_s=100)
    run = start(lab, bench, cases=[long, bench.voltage])

    def heard_at(fraction_above: float, request) -> None:
        for _ in range(WAIT_S * 100):  # until a heartbeat reached devicelab
            if lab.get_test_run(request.run_id).progress > fraction_above:
                return
            threading.Event().wait(0.01)

    class Soak:
        def execute(self, request, cancel, report_partial):
            if request.case.id == long.id:
                lab.clock.advance(50)  # half the planned duration
                heard_at(0.2, request)
                lab.clock.advance(100)  # overrunning: the case counts as done, no more
                heard_at(0.45, request)
            return [
                ResultReport(request.case.id, d.id, (Observation("voltage", 230.0),))
                for d in request.devices
            ]

    execute, callbacks, _ = runner({"soak": Soak()})

    assert execute(message_for(run)).reason == "completed"
    fractions = [call.args[1] for call in callbacks.reports("progress")]
    assert 0.25 in fractions  # half of the first of two cases
    assert max(fractions) == 0.5  # never beyond the cases done plus the one running
    assert fractions == sorted(fractions)


def test_a_single_case_run_shows_progress_but_not_done_before_its_result(lab, bench, runner):
    run = start(lab, bench, cases=[lab.add_test_case("one", duration_s=10)])

    class Overrun:
        def execute(self, request, cancel, report_partial):
            lab.clock.advance(30)
            for _ in range(WAIT_S * 100):
                if lab.get_test_run(request.run_id).progress > 0:
                    break
                cancel.wait(0.01)
            return []

    execute, callbacks, _ = runner({"overrun": Overrun()})

    execute(message_for(run))
    fractions = {call.args[1] for call in callbacks.reports("progress")}
    assert 0.99 in fractions and fractions <= {0.0, 0.99}  # 0 if a beat came before the clock moved
    assert lab.get_test_run(run.id).progress == 1.0  # with the result


def test_between_cases_a_progress_report_carries_the_finished_case(lab, bench, runner):
    run = start(lab, bench)
    execute, callbacks, _ = runner()

    execute(message_for(run))

    after_first = [c for c in callbacks.reports("progress") if c.args[1] == 0.5]
    assert len(after_first) == 1
    partials = after_first[0].args[3]
    assert {(r.test_case_id, r.device_id) for r in partials} == {
        (bench.voltage.id, bench.d1.id),
        (bench.voltage.id, bench.d2.id),
    }


def test_measurements_go_to_the_metrics_writer(lab, bench, runner):
    run = start(lab, bench)
    metrics = RecordedMetrics()
    execute, _, _ = runner(metrics=metrics)

    execute(message_for(run))

    assert len(metrics.written) == 4
    assert {run_id for run_id, _ in metrics.written} == {run.id}


def test_a_broken_metrics_writer_does_not_fail_the_run(lab, bench, runner):
    class Broken:
        def write(self, run_id, results):
            raise OSError("influx is away")

    run = start(lab, bench)
    execute, _, _ = runner(metrics=Broken())

    assert execute(message_for(run)).reason == "completed"
    assert lab.get_test_run(run.id).status is RunStatus.COMPLETED


# -- redelivery and refusals -------------------------------------------------------------------


def test_a_redelivered_job_of_a_finished_run_is_dropped_without_executing(lab, bench, runner):
    run = start(lab, bench)
    execute, _, _ = runner()
    execute(message_for(run))
    results_before = lab.get_test_run(run.id).results
    recording = Recording(value=999)
    again, _, _ = runner({"recording": recording})

    outcome = again(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "run_finished")
    assert recording.requests == []
    assert lab.get_test_run(run.id).results == results_before


def test_a_job_of_a_cancelled_run_is_dropped(lab, bench, runner):
    run = start(lab, bench)
    lab.cancel_test_run(run.id, by="alice")
    recording = Recording()
    execute, _, _ = runner({"recording": recording})

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "run_finished")
    assert recording.requests == []


def test_a_job_whose_claimant_fell_silent_is_taken_over_once_the_claim_lapses(lab, bench, runner):
    run = start(lab, bench)
    lab.record_started(run.id, "runner-b")  # the first delivery went there, and it crashed
    lab.clock.advance(5)
    execute, callbacks, _ = runner()
    began = lab.clock.now()

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "completed")
    finished = lab.get_test_run(run.id)
    assert (finished.status, finished.runner) == (RunStatus.COMPLETED, "runner-a")
    assert len(callbacks.reports("started")) == 2  # refused once, then after the lapse
    assert (finished.finished_at - began).total_seconds() <= lab.claim_lease_s


def test_a_job_whose_claimant_stays_alive_is_deferred_not_dropped(lab, bench, runner):
    run = start(lab, bench)
    lab.record_started(run.id, "runner-b")

    def alive() -> None:  # runner-b's heartbeats go on while runner-a waits
        lab.record_progress(run.id, ProgressReport(0.5, runner="runner-b"))

    recording = Recording()
    execute, callbacks, _ = runner(
        {"recording": recording}, pause=passing_time(lab, alive), claim_patience_s=60
    )
    began = lab.clock.now()

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.DEFER, "run_claimed")
    assert outcome.delay_s == 60 and "runner-b" in outcome.detail
    assert recording.requests == []
    assert len(callbacks.reports("started")) >= 3  # asked again as the claim would lapse
    assert (lab.clock.now() - began).total_seconds() <= 60
    assert lab.get_test_run(run.id).runner == "runner-b"


def test_a_job_offered_again_beside_a_redelivered_copy_is_never_executed_twice(lab, bench, runner):
    """RabbitMQ redelivers a killed runner's job and devicelab's worker offers it again: the
    copy that meets a live claim is deferred, the one that meets a finished run is acked."""
    run = start(lab, bench)
    lab.record_started(run.id, "runner-dead")
    lab.clock.advance(lab.reoffer_after_s + 1)
    assert lab.reoffer_abandoned_jobs() == [run.id]
    offered = message_for(lab.get_test_run(run.id))  # as the relay publishes the new copy
    lab.record_started(run.id, "runner-a")  # the redelivered copy was taken over meanwhile

    def runner_a_alive() -> None:
        lab.record_progress(run.id, ProgressReport(0.5, runner="runner-a"))

    recording = Recording()
    other, _, _ = runner(
        {"recording": recording},
        pause=passing_time(lab, runner_a_alive),
        runner_id="runner-b",
        claim_patience_s=lab.claim_lease_s,
    )
    deferred = other(offered)
    assert (deferred.disposition, deferred.reason) == (Disposition.DEFER, "run_claimed")

    lab.record_result(run.id, [])  # runner-a finished the run
    again = other(offered)  # the deferred copy comes round again

    assert (again.disposition, again.reason) == (Disposition.ACK, "run_finished")
    assert recording.requests == []
    finished = lab.get_test_run(run.id)
    assert (finished.status, finished.runner) == (RunStatus.COMPLETED, "runner-a")


def test_a_runner_stopping_while_it_waits_for_a_claim_gives_the_job_back(lab, bench, runner):
    run = start(lab, bench)
    lab.record_started(run.id, "runner-b")
    holder = {}

    def stop_meanwhile(stop: threading.Event, seconds: float) -> bool:
        holder["running"].shut_down()
        return stop.is_set()

    execute, callbacks, running = runner(pause=stop_meanwhile)
    holder["running"] = running

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.REQUEUE, "shutdown")
    assert callbacks.reports("released") == []  # it never held the claim
    assert lab.get_test_run(run.id).runner == "runner-b"


def test_the_same_runner_restarted_executes_its_own_run_again_at_once(lab, bench, runner):
    run = start(lab, bench)
    lab.record_started(run.id, "runner-a")  # this runner's id, before it was killed
    lab.record_progress(run.id, ProgressReport(0.5, "half way", runner="runner-a"))
    execute, callbacks, _ = runner(pause=lambda stop, seconds: pytest.fail("it waited"))

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "completed")
    finished = lab.get_test_run(run.id)
    assert (finished.status, finished.runner) == (RunStatus.COMPLETED, "runner-a")
    assert len(finished.results) == 4 and len(callbacks.reports("started")) == 1


def test_a_runner_that_lost_its_run_stops_at_its_next_heartbeat(lab, bench, runner):
    def taken_over(request, cancel, report_partial):
        lab.clock.advance(lab.claim_lease_s + 1)  # this runner froze
        lab.record_started(request.run_id, "runner-b")

    executor = Acting(taken_over)
    run = start(lab, bench)
    execute, callbacks, _ = runner({"slow": executor})

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "claim_lost")
    assert executor.saw_cancel.is_set()
    assert callbacks.reports("result") == [] and callbacks.reports("failed") == []
    assert lab.get_test_run(run.id).runner == "runner-b"


def test_a_job_for_an_unknown_run_is_dead_lettered(lab, bench, runner):
    run = start(lab, bench)
    payload = json.loads(message_for(run))
    payload["run_id"] = "no-such-run"
    payload["callback"]["base_url"] = "http://devicelab.test/api/runner/test-runs/no-such-run"
    execute, _, _ = runner()

    outcome = execute(json.dumps(payload).encode())

    assert (outcome.disposition, outcome.reason) == (Disposition.DEAD_LETTER, "unknown_run")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json at all", "invalid_job"),
        (b"[1, 2]", "invalid_job"),
        (b'{"contract_version": 99, "run_id": "r"}', "unsupported_contract_version"),
        (b'{"contract_version": 2, "run_id": "r"}', "invalid_job"),
        (b'{"contract_version": 1, "run_id": "r"}', "unsupported_contract_version"),
    ],
)
def test_a_message_that_is_no_job_is_dead_lettered(runner, body, reason):
    recording = Recording()
    execute, callbacks, _ = runner({"recording": recording})

    outcome = execute(body)

    assert (outcome.disposition, outcome.reason) == (Disposition.DEAD_LETTER, reason)
    assert callbacks.calls == []
    assert recording.requests == []


def test_a_refused_credential_dead_letters_the_job(lab, bench, runner):
    run = start(lab, bench)
    callbacks = ScriptedCallbacks(started=[reply(CallbackStatus.UNAUTHORIZED, 401)])
    recording = Recording()
    execute, _, _ = runner({"recording": recording}, callbacks=callbacks)

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.DEAD_LETTER, "unauthorized")
    assert recording.requests == []


def test_devicelab_unavailable_at_start_gives_the_job_back(lab, bench, runner):
    run = start(lab, bench)
    callbacks = ScriptedCallbacks(started=[reply(CallbackStatus.UNAVAILABLE)])
    recording = Recording()
    execute, _, _ = runner({"recording": recording}, callbacks=callbacks)

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.REQUEUE, "backend_unavailable")
    assert recording.requests == []
    assert lab.get_test_run(run.id).status is RunStatus.QUEUED


def test_a_result_that_cannot_be_delivered_is_not_acked(lab, bench, runner):
    run = start(lab, bench)
    callbacks = ScriptedCallbacks(result=[reply(CallbackStatus.UNAVAILABLE, 503)])
    execute, _, _ = runner(callbacks=callbacks)

    outcome = execute(message_for(run))

    assert outcome.disposition is Disposition.REQUEUE
    assert lab.get_test_run(run.id).status is RunStatus.RUNNING


def test_refused_results_are_reported_as_the_runners_failure(lab, bench, runner):
    run = start(lab, bench)
    callbacks = ScriptedCallbacks(result=[reply(CallbackStatus.REJECTED, 422, "validation_error")])
    execute, _, _ = runner(callbacks=callbacks)

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "failed")
    failed = lab.get_test_run(run.id)
    assert failed.status is RunStatus.FAILED
    assert "result report was refused" in failed.failure_reason
    assert "422" in failed.failure_reason


def test_a_result_for_a_run_finished_meanwhile_is_acked(lab, bench, runner):
    run = start(lab, bench)
    callbacks = ScriptedCallbacks(result=[reply(CallbackStatus.FINISHED, 409, "run_finished")])
    execute, _, _ = runner(callbacks=callbacks)

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "run_finished")


# -- stopping a run ---------------------------------------------------------------------------------


def test_a_409_on_a_heartbeat_stops_the_executor(lab, bench, runner):
    def cancel_in_devicelab(request, cancel, report_partial):
        lab.cancel_test_run(request.run_id, by="alice")

    executor = Acting(cancel_in_devicelab)
    run = start(lab, bench)
    execute, callbacks, _ = runner({"slow": executor})

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "run_finished")
    assert executor.saw_cancel.is_set()
    assert callbacks.reports("result") == [] and callbacks.reports("failed") == []
    assert lab.get_test_run(run.id).status is RunStatus.ABORTED


def test_a_cancel_message_stops_the_executor_and_reports_nothing(lab, bench, runner):
    execute_job = {}

    def cancel_message_arrives(request, cancel, report_partial):
        run = lab.get_test_run(request.run_id)
        assert CancelJob(execute_job["running"])(json.dumps(cancel_payload(run)).encode())

    executor = Acting(cancel_message_arrives)
    run = start(lab, bench)
    execute, callbacks, running = runner({"slow": executor})
    execute_job["running"] = running

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "cancelled")
    assert executor.saw_cancel.is_set()
    assert callbacks.reports("result") == [] and callbacks.reports("failed") == []


def test_a_cancel_message_for_another_run_changes_nothing(runner):
    _, _, running = runner()
    assert not CancelJob(running)(b'{"contract_version": 2, "run_id": "elsewhere"}')


def test_shutting_down_gives_the_job_back_and_reports_nothing(lab, bench, runner):
    holder = {}

    def runner_stops(request, cancel, report_partial):
        holder["running"].shut_down()

    executor = Acting(runner_stops)
    run = start(lab, bench)
    execute, callbacks, running = runner({"slow": executor})
    holder["running"] = running

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.REQUEUE, "shutdown")
    assert executor.saw_cancel.is_set()
    assert callbacks.reports("result") == [] and callbacks.reports("failed") == []
    assert lab.get_test_run(run.id).status is RunStatus.RUNNING


def test_after_shutdown_a_new_job_is_given_back_untouched(lab, bench, runner):
    run = start(lab, bench)
    recording = Recording()
    execute, _, running = runner({"recording": recording})
    running.shut_down()

    outcome = execute(message_for(run))

    assert outcome.disposition is Disposition.REQUEUE
    assert recording.requests == []


def test_an_executor_error_fails_the_run_with_the_reason(lab, bench, runner):
    run = start(lab, bench)
    execute, _, _ = runner({"broken": Raising()})

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "failed")
    failed = lab.get_test_run(run.id)
    assert failed.status is RunStatus.FAILED
    assert "the bench power supply did not answer" in failed.failure_reason
    assert {lab.get_device(d.id).status for d in (bench.d1, bench.d2)} == {DeviceStatus.AVAILABLE}


def test_an_executor_this_runner_lacks_fails_the_run(lab, bench, runner):
    bench.voltage = lab.add_test_case(
        "from telemetry",
        criteria=[("voltage", "<=", 240)],
        execution=ExecutionInput("influxdb"),
    )
    run = start(lab, bench, cases=[bench.voltage])
    execute, _, _ = runner()  # simulate only

    outcome = execute(message_for(run))

    assert outcome.reason == "failed"
    assert "'influxdb'" in lab.get_test_run(run.id).failure_reason


def test_an_executor_past_its_timeout_is_stopped_and_the_run_fails(lab, bench, runner):
    def time_flies(request, cancel, report_partial):
        lab.clock.advance(request.case.timeout_s + 60)

    executor = Acting(time_flies)
    run = start(lab, bench, cases=[bench.voltage])
    execute, _, _ = runner({"stuck": executor}, timeout_grace_s=5)

    outcome = execute(message_for(run))

    assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "failed")
    assert executor.saw_cancel.is_set()
    failed = lab.get_test_run(run.id)
    assert failed.status is RunStatus.FAILED
    assert "did not finish within its timeout of 60 s" in failed.failure_reason
