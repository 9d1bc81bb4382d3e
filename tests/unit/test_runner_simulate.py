"""The simulate executor: deterministic with a seed, and values on the side of each threshold
that the pass probability asks for."""

from __future__ import annotations

import random
import threading

import pytest

from adapters.clocks import SettableClock
from adapters.runner.executors import SimulateExecutor
from adapters.runner.simulation import (
    SAMPLES,
    failing_value,
    passing_value,
    simulate_observations,
)
from application.runner import ExecutionRequest
from domain.test_cases import Condition, Criterion, Statistic
from domain.test_runs import Verdict, judge, verdict_of
from tests.support.runner import T0, make_run

THRESHOLDS = [-40.0, 0.0, 0.9, 16.0, 230.0, 1e6]
SEEDS = range(40)


def request_for(run, case_index: int = 0) -> ExecutionRequest:
    case = run.test_cases[case_index]
    return ExecutionRequest(run.id, case, run.devices, run.environment, case.parameters)


def simulate(run, executor: SimulateExecutor, cancel: threading.Event | None = None):
    partials = []
    results = executor.execute(request_for(run), cancel or threading.Event(), partials.append)
    return results, partials


def verdict(run, result) -> Verdict:
    criteria = run.test_cases[0].criteria
    return verdict_of([judge(c, result.observations) for c in criteria], result.error)


def criterion_at(condition: Condition, threshold: float) -> Criterion:
    """A criterion of each kind around `threshold`."""
    if condition is Condition.BETWEEN:
        return Criterion("m", condition, min=threshold, max=threshold + abs(threshold) / 10)
    if condition is Condition.WITHIN_PERCENT:
        return Criterion("m", condition, nominal=threshold, percent=5)
    return Criterion("m", condition, threshold)


@pytest.mark.parametrize("condition", list(Condition))
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_a_passing_value_meets_its_criterion(condition, threshold):
    criterion = criterion_at(condition, threshold)
    for seed in SEEDS:
        value = passing_value([criterion], random.Random(seed))
        assert criterion.is_met_by(value), (criterion.describe(), value)


@pytest.mark.parametrize("condition", list(Condition))
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_a_failing_value_misses_its_criterion(condition, threshold):
    criterion = criterion_at(condition, threshold)
    for seed in SEEDS:
        value = failing_value(criterion, random.Random(seed))
        assert not criterion.is_met_by(value), (criterion.describe(), value)


def test_values_are_plausible_not_extreme():
    criterion = Criterion("voltage", Condition.LE, 240.0)
    values = [passing_value([criterion], random.Random(seed)) for seed in SEEDS]
    assert all(150 < v <= 240 for v in values)
    assert len(set(values)) > 30  # noisy, not one constant


def test_criteria_on_one_metric_are_met_together():
    window = [Criterion("voltage", ">=", 207.0), Criterion("voltage", "<=", 253.0)]
    for seed in SEEDS:
        passes, (observation,) = simulate_observations(window, random.Random(seed), 1.0)
        assert passes and 207 <= observation.value <= 253
        passes, (observation,) = simulate_observations(window, random.Random(seed), 0.0)
        assert not passes and not 207 <= observation.value <= 253


@pytest.mark.parametrize("of", list(Statistic))
@pytest.mark.parametrize(("probability", "expected"), [(1.0, True), (0.0, False)])
def test_every_statistic_of_the_simulated_samples_comes_out_as_meant(of, probability, expected):
    criteria = [
        Criterion("voltage", "between", min=207, max=253, unit="V", of=of),
        Criterion("current", "within_percent", nominal=10, percent=5, of=of),
        Criterion("power", "<", 100, of=of),
    ]
    for seed in SEEDS:
        passes, observations = simulate_observations(criteria, random.Random(seed), probability, 60)
        assert passes is expected
        assert all(len(o.samples) == SAMPLES for o in observations)
        assert all(o.samples[-1] == (60, o.value) for o in observations)
        outcomes = {judge(c, observations).passed for c in criteria}
        assert outcomes == ({True} if expected else {True, False}), (seed, observations)


@pytest.mark.parametrize(("probability", "expected"), [(1.0, Verdict.PASS), (0.0, Verdict.FAIL)])
def test_pass_probability_one_passes_and_zero_fails_every_result(probability, expected):
    run = make_run(
        criteria=[
            ("voltage", ">=", 207.0),
            ("voltage", "<=", 253.0),
            ("current", "<", 16.0),
            ("errors", "==", 0.0),
            ("firmware_ok", "!=", 0.0),
            ("power_factor", ">", 0.9),
        ],
        devices=5,
    )
    for seed in map(str, SEEDS):
        executor = SimulateExecutor(SettableClock(T0), seed, probability, time_factor=0)
        results, _ = simulate(run, executor)
        assert {verdict(run, r) for r in results} == {expected}


def test_the_same_seed_gives_the_same_values():
    run = make_run(devices=3)

    def values(seed):
        results, _ = simulate(run, SimulateExecutor(SettableClock(T0), seed, 0.5, time_factor=0))
        return [(r.device_id, r.observations) for r in results]

    assert values("42") == values("42")
    assert values("42") != values("43")


def test_without_a_seed_values_differ_between_runs():
    run = make_run(devices=3)
    executor = SimulateExecutor(SettableClock(T0), None, 0.5, time_factor=0)
    first, _ = simulate(run, executor)
    second, _ = simulate(run, executor)
    assert [r.observations for r in first] != [r.observations for r in second]


def test_each_device_gets_one_result_reported_as_partial_too():
    run = make_run(devices=3)
    results, partials = simulate(run, SimulateExecutor(SettableClock(T0), "1", time_factor=0))
    assert [r.device_id for r in results] == ["dev-1", "dev-2", "dev-3"]
    assert partials == results
    assert all(r.observations[0].unit == "V" for r in results)


def test_the_case_parameter_overrides_the_pass_probability():
    run = make_run(parameters={"pass_probability": 0}, devices=4)
    executor = SimulateExecutor(SettableClock(T0), "1", pass_probability=1.0, time_factor=0)
    results, _ = simulate(run, executor)
    assert {verdict(run, r) for r in results} == {Verdict.FAIL}


@pytest.mark.parametrize("bad", [1.5, -0.1, "often", True])
def test_a_bad_pass_probability_is_refused(bad):
    run = make_run(parameters={"pass_probability": bad})
    executor = SimulateExecutor(SettableClock(T0), "1", time_factor=0)
    with pytest.raises(ValueError, match="pass_probability"):
        simulate(run, executor)


def test_a_cancelled_simulation_returns_nothing_without_waiting_its_duration():
    run = make_run(duration_s=3600)
    cancel = threading.Event()
    cancel.set()
    results, partials = simulate(run, SimulateExecutor(SettableClock(T0), "1"), cancel)
    assert results == [] and partials == []
