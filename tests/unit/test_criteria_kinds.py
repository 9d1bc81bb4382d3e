"""The richer criteria: between, within_percent, the marginal band, a statistic of samples
(`of`), inconclusive with a reason, and the verdict order fail > inconclusive > marginal >
pass."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.test_cases import Condition, Criterion, MarginalBand, Outcome, Statistic
from domain.test_runs import (
    Measurement,
    Observation,
    Verdict,
    judge,
    overall_verdict,
    percentile,
    verdict_of,
)
from tests.support.criteria import criteria_of, finite

values = st.floats(-1e9, 1e9, allow_nan=False)


@given(low=finite, high=finite, value=finite)
def test_between_is_at_least_min_and_at_most_max(low: float, high: float, value: float) -> None:
    low, high = min(low, high), max(low, high)
    criterion = Criterion("v", "between", min=low, max=high)
    assert criterion.is_met_by(value) is (value >= low and value <= high)


@given(nominal=values, percent=st.floats(0.001, 100), value=values)
def test_within_percent_is_the_deviation_from_nominal(
    nominal: float, percent: float, value: float
) -> None:
    criterion = Criterion("v", "within_percent", nominal=nominal, percent=percent)
    low, high = criterion.bounds
    assert criterion.is_met_by(value) is (low <= value <= high)
    assert math.isclose(high - nominal, abs(nominal) * percent / 100, abs_tol=1e-6)


@given(criterion=criteria_of(st.just("v"), st.just("")), value=finite)
def test_a_marginal_band_only_ever_turns_a_pass_into_marginal(criterion, value) -> None:
    plain = Criterion.from_json({**criterion.as_json(), "marginal": None})
    outcome = criterion.outcome_of(value)
    if plain.outcome_of(value) is Outcome.FAIL:
        assert outcome is Outcome.FAIL
    elif criterion.marginal is not None and criterion.marginal.contains(value):
        assert outcome is Outcome.MARGINAL
    else:
        assert outcome is Outcome.PASS


@given(criterion=criteria_of(st.text(min_size=1).filter(str.strip), st.text(max_size=5)))
def test_a_criterion_reads_back_from_its_json(criterion: Criterion) -> None:
    assert Criterion.from_json(criterion.as_json()) == criterion


def test_a_criterion_stored_before_the_range_kinds_loads_as_it_was() -> None:
    old = {"metric": "voltage", "condition": "<=", "threshold": 240, "unit": "V"}
    criterion = Criterion.from_json(old)
    assert criterion == Criterion("voltage", "<=", 240.0, "V")
    assert criterion.of is Statistic.FINAL and criterion.marginal is None
    assert criterion.as_json() == {**old, "threshold": 240.0}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"condition": "between", "min": 2, "max": 1}, "min must not be greater than max"),
        ({"condition": "between", "min": 1}, "between needs max"),
        ({"condition": "between", "min": 1, "max": math.inf}, "max must be a finite number"),
        ({"condition": "between", "min": 1, "max": 2, "threshold": 3}, "threshold does not"),
        ({"condition": "within_percent", "nominal": 230, "percent": 0}, "percent must be greater"),
        ({"condition": "within_percent", "nominal": 230, "percent": -1}, "percent must be greater"),
        ({"condition": "within_percent", "percent": 5}, "within_percent needs nominal"),
        ({"condition": "<", "threshold": 1, "of": "median"}, "of must be one of"),
        ({"condition": "<", "threshold": 1, "marginal": {}}, "needs min, max or both"),
        ({"condition": "<", "threshold": 1, "marginal": {"min": 2, "max": 1}}, "marginal.min"),
        ({"condition": "<", "threshold": 1, "marginal": 0.5}, "marginal must be an object"),
        ({"condition": "<"}, "< needs threshold"),
    ],
)
def test_a_criterion_that_cannot_be_judged_is_refused_naming_why(fields, message) -> None:
    with pytest.raises(InvalidValue, match=message):
        Criterion.from_json({"metric": "v", **fields})


def test_describe_says_each_kind_in_words() -> None:
    assert Criterion("v", "between", min=207, max=253, unit="V").describe() == (
        "v between 207 and 253 V"
    )
    within = Criterion("f", "within_percent", nominal=50, percent=0.2, unit="Hz", of="p95")
    assert within.describe() == "f within 0.2 % of 50 Hz (p95 of samples)"


# -- judging ---------------------------------------------------------------------------------


def series(*points: float) -> tuple[tuple[float, float], ...]:
    return tuple((float(t), v) for t, v in enumerate(points))


def test_a_passing_value_in_the_band_is_marginal_and_the_case_too() -> None:
    criterion = Criterion("err", "<=", 1.0, "%", marginal=MarginalBand(min=0.8))
    measured = judge(criterion, [Observation("err", 0.9, "%")])
    assert measured.outcome is Outcome.MARGINAL and measured.passed is True
    assert verdict_of([measured]) is Verdict.MARGINAL
    assert judge(criterion, [Observation("err", 0.5, "%")]).outcome is Outcome.PASS
    assert judge(criterion, [Observation("err", 1.1, "%")]).outcome is Outcome.FAIL


def test_a_missing_metric_is_inconclusive_with_the_reason() -> None:
    measured = judge(Criterion("voltage", ">=", 207), [Observation("current", 1)])
    assert measured.outcome is Outcome.INCONCLUSIVE
    assert measured.reason == "no value reported for voltage"


def test_another_unit_is_inconclusive_with_the_reason_and_keeps_the_value() -> None:
    measured = judge(Criterion("voltage", ">=", 207, "V"), [Observation("voltage", 230e3, "mV")])
    assert (measured.outcome, measured.value) == (Outcome.INCONCLUSIVE, 230e3)
    assert measured.reason == "unit mV differs from criterion unit V"
    # one side naming no unit is no mismatch
    assert judge(Criterion("voltage", ">=", 207, "V"), [Observation("voltage", 230)]).passed


@pytest.mark.parametrize(
    ("of", "value", "outcome"),
    [
        ("final", 5.0, Outcome.PASS),
        ("max", 12.0, Outcome.FAIL),
        ("min", 1.0, Outcome.PASS),
        ("mean", 5.0, Outcome.PASS),
        ("p95", 12.0, Outcome.FAIL),
        ("all", 12.0, Outcome.FAIL),
    ],
)
def test_of_judges_a_statistic_of_the_samples(of: str, value: float, outcome: Outcome) -> None:
    criterion = Criterion("latency", "<", 10, of=of)
    observed = Observation("latency", samples=series(1, 2, 12, 5, 5))
    measured = judge(criterion, [observed])
    assert (measured.value, measured.outcome) == (value, outcome)
    assert measured.samples == observed.samples


def test_all_reports_the_first_marginal_sample_when_none_fails() -> None:
    criterion = Criterion("t", "<", 10, of="all", marginal={"min": 8})
    measured = judge(criterion, [Observation("t", samples=series(1, 9, 8.5, 2))])
    assert (measured.value, measured.outcome) == (9, Outcome.MARGINAL)


def test_without_samples_the_value_is_a_series_of_one() -> None:
    measured = judge(Criterion("t", "<", 10, of="p95"), [Observation("t", 3)])
    assert (measured.value, measured.passed) == (3, True)


@given(st.lists(finite, min_size=1, max_size=50))
def test_p95_is_a_measured_value_with_95_percent_at_or_below(points: list[float]) -> None:
    p95 = percentile(points, 95)
    assert p95 in points
    assert sum(v <= p95 for v in points) >= 0.95 * len(points)


@pytest.mark.parametrize(
    "samples",
    [[[1, 2, 3]], [[0, math.nan]], [[-1, 1]], [[2, 1], [1, 1]], [[0, True]]],
)
def test_broken_samples_are_refused(samples) -> None:
    with pytest.raises(InvalidValue):
        Observation("t", samples=samples)


def test_an_observation_needs_a_value_or_samples_and_the_last_sample_is_final() -> None:
    with pytest.raises(InvalidValue, match="a value or samples"):
        Observation("t")
    assert Observation("t", samples=[[0, 1], [5, 2]]).value == 2


# -- the verdict order -----------------------------------------------------------------------

outcomes = st.sampled_from([True, False, None]).flatmap(
    lambda passed: st.builds(
        Measurement,
        metric=st.just("m"),
        condition=st.just("<"),
        threshold=st.just(1.0),
        unit=st.just(""),
        value=st.just(None if passed is None else 0.5),
        passed=st.just(passed),
        marginal=st.just(False) if not passed else st.booleans(),
    )
)


@given(st.lists(outcomes, max_size=6), st.booleans())
def test_fail_wins_over_inconclusive_over_marginal_over_pass(measured, error) -> None:
    found = {m.outcome for m in measured}
    verdict = verdict_of(measured, error)
    if Outcome.FAIL in found:
        assert verdict is Verdict.FAIL
    elif error or not measured or Outcome.INCONCLUSIVE in found:
        assert verdict is Verdict.INCONCLUSIVE
    elif Outcome.MARGINAL in found:
        assert verdict is Verdict.MARGINAL
    else:
        assert verdict is Verdict.PASS


@given(st.lists(st.sampled_from(list(Verdict)), max_size=6))
def test_a_run_has_the_worst_verdict_of_its_cases(verdicts: list[Verdict]) -> None:
    order = [Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.MARGINAL, Verdict.PASS]
    expected = min(verdicts, key=order.index) if verdicts else Verdict.INCONCLUSIVE
    assert overall_verdict(verdicts) is expected
    assert overall_verdict([Verdict.PASS, Verdict.MARGINAL]).passed


def test_condition_kinds_are_ranges_or_thresholds() -> None:
    assert Condition.BETWEEN.is_range and not Condition.LE.is_range
