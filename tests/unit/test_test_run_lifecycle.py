"""A test run's life: create, start, progress, results and verdict, failure, abort, expiry;
and booking its devices (all or none)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from domain.booking import release_devices_of, reserve_devices
from domain.devices import Device, DeviceStatus
from domain.environments import EnvironmentSnapshot
from domain.errors import (
    ConflictingReport,
    DeviceUnavailable,
    InvalidTransition,
    InvalidValue,
    RunAlreadyFinished,
    RunClaimed,
)
from domain.test_cases import Criterion, TestCase, TestCaseSnapshot
from domain.test_runs import (
    TIMEOUT_REASON,
    DeviceSnapshot,
    Observation,
    ResultReport,
    RunStatus,
    TestRun,
    Verdict,
    overall_verdict,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
QUEUE_S = 600


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def snapshot(case_id: str, *criteria: Criterion, timeout_s: int = 300) -> TestCaseSnapshot:
    return TestCase(
        id=case_id, name=f"case {case_id}", criteria=list(criteria), timeout_s=timeout_s
    ).snapshot()


VOLTAGE = snapshot("c-volt", Criterion("voltage", "<=", 240))
POWER = snapshot(
    "c-power",
    Criterion("power", ">=", 100),
    Criterion("power_factor", ">", 0.9),
    timeout_s=600,
)
ENVIRONMENT = EnvironmentSnapshot("env-1", "bench", "", {})


def a_run(
    cases: tuple[TestCaseSnapshot, ...] = (VOLTAGE, POWER),
    devices: tuple[str, ...] = ("d1", "d2"),
) -> TestRun:
    return TestRun.create(
        id="run-1",
        test_cases=cases,
        environment=ENVIRONMENT,
        devices=[DeviceSnapshot(d, f"meter {d}") for d in devices],
        started_by="alice",
        at=T0,
        queue_allowance_s=QUEUE_S,
    )


def report(case: str, device: str, error: bool = False, **values: float) -> ResultReport:
    observations = tuple(Observation(metric, value) for metric, value in values.items())
    return ResultReport(case, device, observations, error=error)


def all_passing() -> list[ResultReport]:
    return [
        report(case, device, voltage=230, power=150, power_factor=0.95)
        for case in ("c-volt", "c-power")
        for device in ("d1", "d2")
    ]


# -- creation ------------------------------------------------------------------------------


def test_a_new_run_is_queued_with_a_deadline_covering_queueing_and_all_timeouts() -> None:
    run = a_run()
    assert run.status is RunStatus.QUEUED
    assert run.verdict is None
    assert run.holds_devices
    assert run.device_ids == ("d1", "d2")
    assert run.timeout_s == 900
    assert run.deadline == at(QUEUE_S + 900)
    assert run.expected_pairs == [
        ("c-volt", "d1"),
        ("c-volt", "d2"),
        ("c-power", "d1"),
        ("c-power", "d2"),
    ]


@pytest.mark.parametrize(
    ("cases", "devices", "field"),
    [
        ((), ("d1",), "test_case_ids"),
        ((VOLTAGE, VOLTAGE), ("d1",), "test_case_ids"),
        ((VOLTAGE,), (), "device_ids"),
        ((VOLTAGE,), ("d1", "d1"), "device_ids"),
    ],
)
def test_a_run_needs_distinct_cases_and_distinct_devices(
    cases: tuple[TestCaseSnapshot, ...], devices: tuple[str, ...], field: str
) -> None:
    with pytest.raises(InvalidValue) as raised:
        a_run(cases, devices)
    assert raised.value.field == field


# -- start and progress ------------------------------------------------------------------


def test_starting_moves_the_run_to_running_and_gives_it_the_full_timeout() -> None:
    run = a_run()
    assert run.start(at(QUEUE_S + 100)) is True
    assert run.status is RunStatus.RUNNING
    assert run.started_at == at(QUEUE_S + 100)
    assert run.deadline == at(QUEUE_S + 100 + 900)


def test_an_early_start_spends_the_queue_allowance() -> None:
    """Once a runner has the job, the run has its timeout from the start, not the time it
    was allowed to wait in the queue on top: a runner that dies is noticed sooner."""
    run = a_run()
    run.start(at(5))
    assert run.deadline == at(5 + 900)


def test_a_repeated_start_changes_nothing() -> None:
    run = a_run()
    run.start(at(5))
    assert run.start(at(50)) is False
    assert run.status is RunStatus.RUNNING
    assert run.started_at == at(5)


def test_the_run_remembers_which_runner_started_it() -> None:
    run = a_run()
    assert run.start(at(5), "runner-a", takeover_after_s=300) is True
    assert run.runner == "runner-a"
    assert run.start(at(6), "runner-a", takeover_after_s=300) is False
    assert run.runner == "runner-a"


@pytest.mark.parametrize("silent_s", [0, 299, 300])
def test_another_runner_is_refused_while_the_first_one_is_heard_from(silent_s: int) -> None:
    run = a_run()
    run.start(at(5), "runner-a")
    run.record_progress(at(50), 0.2)  # the first runner is still alive at 50 s
    with pytest.raises(InvalidTransition):
        run.start(at(50 + silent_s), "runner-b", takeover_after_s=300)
    assert (run.runner, run.status, run.started_at) == ("runner-a", RunStatus.RUNNING, at(5))


def test_another_runner_takes_over_once_the_first_has_been_silent_too_long() -> None:
    run = a_run()
    run.start(at(5), "runner-a")
    run.record_progress(at(50), 0.2)
    assert run.start(at(351), "runner-b", takeover_after_s=300) is True
    assert (run.runner, run.status, run.started_at) == ("runner-b", RunStatus.RUNNING, at(5))
    assert run.last_report_at == at(351)
    with pytest.raises(InvalidTransition):  # and now the first one is the intruder
        run.start(at(352), "runner-a", takeover_after_s=300)


def test_a_refusal_says_who_holds_the_claim_and_when_it_lapses() -> None:
    run = a_run()
    run.start(at(5), "runner-a", takeover_after_s=20)
    run.record_progress(at(10), 0.2, runner="runner-a")  # a heartbeat renews the claim
    with pytest.raises(RunClaimed) as refused:
        run.start(at(16), "runner-b", takeover_after_s=20)
    assert refused.value.runner == "runner-a"
    assert refused.value.retry_after_s == pytest.approx(14)
    assert run.last_report_at == at(10)  # a refused start renews nobody's claim
    assert run.start(at(30.5), "runner-b", takeover_after_s=20) is True
    assert run.runner == "runner-b"


def test_the_same_runner_restarted_is_accepted_at_once_and_keeps_its_claim() -> None:
    run = a_run()
    run.start(at(5), "host-0", takeover_after_s=20)
    assert run.start(at(6), "host-0", takeover_after_s=20) is False  # nothing to store
    assert (run.status, run.runner) == (RunStatus.RUNNING, "host-0")
    with pytest.raises(RunClaimed):
        run.start(at(7), "host-1", takeover_after_s=20)


def test_a_heartbeat_from_a_runner_that_lost_the_run_is_refused() -> None:
    run = a_run()
    run.start(at(5), "runner-a", takeover_after_s=20)
    run.start(at(26), "runner-b", takeover_after_s=20)
    with pytest.raises(RunClaimed) as refused:
        run.record_progress(at(27), 0.9, runner="runner-a")
    assert refused.value.retry_after_s is None
    assert (run.progress, run.last_report_at) == (0.0, at(26))
    assert run.record_progress(at(27), 0.1, runner="runner-b") is True
    assert run.record_progress(at(28), 0.2) is True  # an anonymous heartbeat is not checked


def test_without_a_takeover_allowance_another_runner_is_always_refused() -> None:
    run = a_run()
    run.start(at(5), "runner-a")
    with pytest.raises(InvalidTransition):
        run.start(at(10**6), "runner-b")


def test_an_anonymous_start_never_conflicts() -> None:
    run = a_run()
    run.start(at(5), "runner-a", takeover_after_s=300)
    assert run.start(at(6), "", takeover_after_s=300) is False
    assert run.runner == "runner-a"


def test_a_named_runner_claims_a_run_nobody_claims() -> None:
    run = a_run()
    run.start(at(5), "", takeover_after_s=300)
    assert run.start(at(6), "runner-b", takeover_after_s=300) is True
    assert run.runner == "runner-b"


def test_a_run_given_back_is_claimed_by_the_next_runner_at_once() -> None:
    run = a_run()
    run.start(at(5), "runner-a", takeover_after_s=300)
    assert run.give_back(at(6), "runner-b") is False  # not its claim
    assert run.give_back(at(7), "runner-a") is True
    assert run.runner == ""
    assert run.start(at(8), "runner-b", takeover_after_s=300) is True
    assert run.runner == "runner-b"
    assert run.deadline >= at(8 + run.timeout_s)


def test_progress_on_a_queued_run_implies_that_it_started() -> None:
    run = a_run()
    assert run.record_progress(at(5), 0.25, "warming up") is True
    assert run.status is RunStatus.RUNNING
    assert run.started_at == at(5)
    assert (run.progress, run.progress_message) == (0.25, "warming up")


def test_the_same_progress_again_still_renews_the_lease() -> None:
    run = a_run()
    run.record_progress(at(5), 0.25, "warming up", lease_s=2000)
    assert run.record_progress(at(60), 0.25, "warming up", lease_s=2000) is True
    assert run.last_report_at == at(60)
    assert run.deadline == at(60 + 2000)


@pytest.mark.parametrize("progress", [0, 1, 0.0, 1.0, 0.5])
def test_progress_between_zero_and_one_is_accepted(progress: float) -> None:
    run = a_run()
    run.record_progress(at(1), progress)
    assert run.progress == progress


@pytest.mark.parametrize("progress", [-0.01, 1.01, 2, math.nan, math.inf, -math.inf, "0.5", None])
def test_progress_outside_zero_to_one_is_refused(progress: object) -> None:
    run = a_run()
    with pytest.raises(InvalidValue) as raised:
        run.record_progress(at(1), progress)
    assert raised.value.field == "progress"
    assert run.progress == 0.0


def test_a_boolean_is_not_a_progress() -> None:
    run = a_run()
    with pytest.raises(InvalidValue):
        run.record_progress(at(1), True)


def test_a_progress_report_with_a_lease_extends_the_deadline() -> None:
    run = a_run()
    run.start(at(0))
    original = run.deadline
    run.record_progress(at(QUEUE_S + 800), 0.9, lease_s=300)
    assert run.deadline == at(QUEUE_S + 800 + 300)
    assert run.deadline > original


def test_a_short_lease_never_shortens_the_deadline() -> None:
    run = a_run()
    run.start(at(5))
    original = run.deadline
    run.record_progress(at(10), 0.1, lease_s=60)
    assert run.deadline == original


def test_partial_results_are_judged_and_kept() -> None:
    run = a_run()
    run.record_progress(at(10), 0.5, partial_results=[report("c-volt", "d1", voltage=250)])
    assert run.results[("c-volt", "d1")].verdict is Verdict.FAIL
    assert run.status is RunStatus.RUNNING
    assert run.verdict is None


# -- completion and verdicts ---------------------------------------------------------------


def test_completing_with_passing_results_passes_and_finishes_the_run() -> None:
    run = a_run()
    run.start(at(1))
    assert run.complete(at(100), all_passing()) is True
    assert run.status is RunStatus.COMPLETED
    assert run.verdict is Verdict.PASS
    assert run.finished_at == at(100)
    assert run.progress == 1.0
    assert not run.holds_devices
    assert {r.verdict for r in run.results.values()} == {Verdict.PASS}


def test_a_result_on_a_queued_run_starts_and_completes_it() -> None:
    run = a_run()
    run.complete(at(100), all_passing())
    assert run.status is RunStatus.COMPLETED
    assert run.started_at == at(100)


@pytest.mark.parametrize(
    ("values", "error", "verdict"),
    [
        ({"power": 150, "power_factor": 0.95}, False, Verdict.PASS),
        ({"power": 99, "power_factor": 0.95}, False, Verdict.FAIL),
        ({"power": 150, "power_factor": 0.9}, False, Verdict.FAIL),
        ({"power": 150}, False, Verdict.INCONCLUSIVE),
        ({}, False, Verdict.INCONCLUSIVE),
        ({"power": 150, "power_factor": 0.95}, True, Verdict.INCONCLUSIVE),
        ({"power": 99}, False, Verdict.FAIL),  # a failed criterion fails even if one is missing
        ({"voltage": 1, "power_factor": 0.95}, False, Verdict.INCONCLUSIVE),  # wrong metric
    ],
)
def test_each_pair_gets_the_verdict_its_measurements_deserve(
    values: dict[str, float], error: bool, verdict: Verdict
) -> None:
    run = a_run(cases=(POWER,), devices=("d1",))
    run.complete(at(10), [report("c-power", "d1", error=error, **values)])
    result = run.results[("c-power", "d1")]
    assert result.verdict is verdict
    assert run.verdict is verdict


def test_measurements_record_what_was_judged() -> None:
    run = a_run(cases=(POWER,), devices=("d1",))
    run.complete(at(10), [report("c-power", "d1", power=99)])
    power, power_factor = run.results[("c-power", "d1")].measurements
    assert (power.metric, power.condition, power.threshold) == ("power", ">=", 100.0)
    assert (power.value, power.passed) == (99, False)
    assert (power_factor.value, power_factor.passed) == (None, None)


def test_the_last_observation_of_a_metric_wins() -> None:
    run = a_run(cases=(VOLTAGE,), devices=("d1",))
    observations = (Observation("voltage", 250), Observation("voltage", 230))
    run.complete(at(10), [ResultReport("c-volt", "d1", observations)])
    assert run.verdict is Verdict.PASS


def test_pairs_without_a_result_are_inconclusive() -> None:
    run = a_run()
    run.complete(at(10), [report("c-volt", "d1", voltage=230)])
    assert set(run.results) == set(run.expected_pairs)
    missing = run.results[("c-power", "d2")]
    assert missing.verdict is Verdict.INCONCLUSIVE
    assert missing.message == "no result reported"
    assert all(m.value is None and m.passed is None for m in missing.measurements)
    assert run.verdict is Verdict.INCONCLUSIVE


def test_an_empty_final_report_is_inconclusive_everywhere() -> None:
    run = a_run()
    run.complete(at(10), [])
    assert {r.verdict for r in run.results.values()} == {Verdict.INCONCLUSIVE}
    assert run.verdict is Verdict.INCONCLUSIVE


def test_one_failed_pair_fails_the_run_even_if_others_are_inconclusive() -> None:
    run = a_run()
    run.complete(at(10), [report("c-volt", "d2", voltage=241)])
    assert run.verdict is Verdict.FAIL


@pytest.mark.parametrize(
    ("verdicts", "overall"),
    [
        ([], Verdict.INCONCLUSIVE),
        ([Verdict.PASS], Verdict.PASS),
        ([Verdict.PASS, Verdict.INCONCLUSIVE], Verdict.INCONCLUSIVE),
        ([Verdict.INCONCLUSIVE, Verdict.FAIL, Verdict.PASS], Verdict.FAIL),
    ],
)
def test_the_overall_verdict(verdicts: list[Verdict], overall: Verdict) -> None:
    assert overall_verdict(verdicts) is overall


def test_repeating_the_accepted_results_changes_nothing() -> None:
    run = a_run()
    run.complete(at(10), all_passing())
    finished_at = run.finished_at
    assert run.complete(at(20), list(reversed(all_passing()))) is False
    assert run.finished_at == finished_at
    assert run.verdict is Verdict.PASS


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "230", None])
def test_a_measured_value_must_be_a_finite_number(value: object) -> None:
    # a NaN would also break idempotency: NaN != NaN, so an identical repeat would conflict
    with pytest.raises(InvalidValue) as raised:
        Observation("voltage", value)
    assert raised.value.field == "results"


def test_different_results_after_completion_are_a_conflict() -> None:
    run = a_run()
    run.complete(at(10), all_passing())
    with pytest.raises(ConflictingReport):
        run.complete(at(20), [report("c-volt", "d1", voltage=250)])
    assert run.verdict is Verdict.PASS


@pytest.mark.parametrize("finish", ["fail", "abort"])
def test_results_after_a_failure_or_abort_are_refused(finish: str) -> None:
    run = a_run()
    if finish == "fail":
        run.fail(at(5), "runner crashed")
    else:
        run.abort(at(5), "alice")
    status = run.status
    with pytest.raises(RunAlreadyFinished):
        run.complete(at(10), all_passing())
    assert run.status is status
    assert run.verdict is None
    assert run.results == {}


@pytest.mark.parametrize(
    "bad",
    [
        report("c-unknown", "d1", voltage=1),
        report("c-volt", "d-unknown", voltage=1),
    ],
)
def test_a_result_naming_a_case_or_device_outside_the_run_is_refused(
    bad: ResultReport,
) -> None:
    run = a_run()
    with pytest.raises(InvalidValue) as raised:
        run.complete(at(10), [*all_passing(), bad])
    assert raised.value.field == "results"
    assert run.status is RunStatus.QUEUED
    with pytest.raises(InvalidValue):
        run.record_progress(at(10), 0.5, partial_results=[bad])


def test_two_results_for_the_same_pair_are_refused() -> None:
    run = a_run()
    with pytest.raises(InvalidValue):
        run.complete(at(10), [*all_passing(), report("c-volt", "d1", voltage=1)])
    assert run.status is RunStatus.QUEUED


@pytest.mark.parametrize("finish", ["complete", "fail", "abort"])
def test_no_progress_or_start_is_accepted_once_finished(finish: str) -> None:
    run = a_run()
    {
        "complete": lambda: run.complete(at(5), all_passing()),
        "fail": lambda: run.fail(at(5), "runner crashed"),
        "abort": lambda: run.abort(at(5), "alice"),
    }[finish]()
    with pytest.raises(RunAlreadyFinished):
        run.start(at(6))
    with pytest.raises(RunAlreadyFinished):
        run.record_progress(at(6), 0.5)
    assert run.progress in (0.0, 1.0)


# -- failure, abort, expiry ----------------------------------------------------------------


def test_a_failure_finishes_the_run_with_its_reason() -> None:
    run = a_run()
    run.start(at(1))
    assert run.fail(at(2), "  flash write failed ") is True
    assert run.status is RunStatus.FAILED
    assert run.failure_reason == "flash write failed"
    assert run.verdict is None
    assert run.finished_at == at(2)
    assert not run.holds_devices


def test_a_failure_without_a_reason_is_a_runner_error() -> None:
    run = a_run()
    run.fail(at(2), "")
    assert run.failure_reason == "runner error"


def test_the_same_failure_again_changes_nothing_but_another_is_refused() -> None:
    run = a_run()
    run.fail(at(2), "flash write failed")
    assert run.fail(at(3), "flash write failed") is False
    assert run.finished_at == at(2)
    with pytest.raises(RunAlreadyFinished):
        run.fail(at(4), "something else")
    assert run.failure_reason == "flash write failed"


def test_a_completed_run_cannot_fail() -> None:
    run = a_run()
    run.complete(at(2), all_passing())
    with pytest.raises(RunAlreadyFinished):
        run.fail(at(3), "late crash")
    assert run.status is RunStatus.COMPLETED


@pytest.mark.parametrize("started", [False, True])
def test_aborting_an_unfinished_run(started: bool) -> None:
    run = a_run()
    if started:
        run.start(at(1))
    assert run.abort(at(2), "alice") is True
    assert run.status is RunStatus.ABORTED
    assert run.failure_reason == "cancelled by alice"
    assert run.finished_at == at(2)
    assert not run.holds_devices


def test_an_abort_keeps_the_reason_given() -> None:
    run = a_run()
    run.abort(at(2), "alice", " wrong firmware ")
    assert run.failure_reason == "wrong firmware"


def test_aborting_twice_changes_nothing() -> None:
    run = a_run()
    run.abort(at(2), "alice", "first")
    assert run.abort(at(3), "bob", "second") is False
    assert (run.failure_reason, run.finished_at) == ("first", at(2))


@pytest.mark.parametrize("finish", ["complete", "fail"])
def test_a_run_that_ended_otherwise_cannot_be_aborted(finish: str) -> None:
    run = a_run()
    if finish == "complete":
        run.complete(at(2), all_passing())
    else:
        run.fail(at(2), "crash")
    status = run.status
    with pytest.raises(InvalidTransition):
        run.abort(at(3), "alice")
    assert run.status is status


def test_a_run_expires_only_after_its_deadline() -> None:
    run = a_run()
    deadline = run.deadline
    assert run.expire(deadline) is False
    assert run.status is RunStatus.QUEUED
    assert not run.is_overdue(deadline)
    assert run.is_overdue(deadline + timedelta(microseconds=1))
    assert run.expire(deadline + timedelta(seconds=1)) is True
    assert run.status is RunStatus.FAILED
    assert run.failure_reason == TIMEOUT_REASON == "timeout"
    assert run.finished_at == deadline + timedelta(seconds=1)


def test_a_leased_run_does_not_expire_at_its_original_deadline() -> None:
    run = a_run()
    original = run.deadline
    run.record_progress(original - timedelta(seconds=1), 0.9, lease_s=300)
    assert run.expire(original + timedelta(seconds=1)) is False
    assert run.status is RunStatus.RUNNING


@pytest.mark.parametrize("finish", ["complete", "fail", "abort"])
def test_a_finished_run_never_expires(finish: str) -> None:
    run = a_run()
    {
        "complete": lambda: run.complete(at(5), all_passing()),
        "fail": lambda: run.fail(at(5), "crash"),
        "abort": lambda: run.abort(at(5), "alice"),
    }[finish]()
    status = run.status
    assert run.expire(at(10**6)) is False
    assert run.status is status


# -- booking ---------------------------------------------------------------------------


def devices(*names: str) -> list[Device]:
    return [Device(id=n, name=f"meter {n}") for n in names]


def test_reserving_books_every_device_for_the_run() -> None:
    run = a_run()
    d1, d2 = devices("d1", "d2")
    reserve_devices(run, [d1, d2], at(0), "alice")
    assert (d1.held_by, d2.held_by) == ("run-1", "run-1")


def test_reserving_is_all_or_nothing_and_names_every_unavailable_device() -> None:
    run = a_run(devices=("d1", "d2", "d3"))
    d1, d2, d3 = devices("d1", "d2", "d3")
    d2.reserve("run-0", at(0), "bob")
    d3.go_offline(at(0), "bob", "broken")
    with pytest.raises(DeviceUnavailable) as raised:
        reserve_devices(run, [d1, d2, d3], at(1), "alice")
    assert raised.value.unavailable == {"d2": "in_test", "d3": "offline"}
    assert raised.value.names == {"d2": "meter d2", "d3": "meter d3"}
    assert raised.value.message == (
        "devices not available: meter d2 (d2, in_test), meter d3 (d3, offline)"
    )
    assert d1.held_by is None
    assert d1.new_history == []
    assert d2.held_by == "run-0"


def test_reserving_again_for_the_same_run_is_harmless() -> None:
    run = a_run()
    d1, d2 = devices("d1", "d2")
    reserve_devices(run, [d1, d2], at(0), "alice")
    reserve_devices(run, [d1, d2], at(1), "alice")
    assert len(d1.new_history) == 1


def test_releasing_frees_only_what_the_finished_run_holds_and_can_be_repeated() -> None:
    run = a_run(devices=("d1", "d2", "d3"))
    d1, d2, d3 = devices("d1", "d2", "d3")
    reserve_devices(run, [d1, d2], at(0), "alice")
    d3.reserve("run-other", at(0), "bob")
    run.complete(at(5), [])
    assert release_devices_of(run, [d1, d2, d3], at(6), "runner") == ["d1", "d2"]
    assert (d1.status, d2.status, d3.status) == (
        DeviceStatus.AVAILABLE,
        DeviceStatus.AVAILABLE,
        DeviceStatus.IN_TEST,
    )
    assert d1.new_history[-1].reason == "run completed"
    assert release_devices_of(run, [d1, d2, d3], at(7), "runner") == []
