"""Success criteria, test cases (versions, snapshots, parameters) and environments."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.environments import Environment
from domain.errors import InvalidValue
from domain.test_cases import (
    MAX_TIMEOUT_S,
    Condition,
    Criterion,
    TestCase,
    with_parameters,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)


def a_case(**details: Any) -> TestCase:
    fields: dict[str, Any] = {
        "id": "case-1",
        "name": "voltage under load",
        "criteria": [Criterion("voltage", "<=", 240)],
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(details)
    return TestCase(**fields)


# -- conditions and criteria -----------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "below", "equal", "above"),
    [
        ("<", True, False, False),
        ("<=", True, True, False),
        (">", False, False, True),
        (">=", False, True, True),
        ("==", False, True, False),
        ("!=", True, False, True),
    ],
)
def test_every_condition_compares_a_value_with_the_threshold(
    condition: str, below: bool, equal: bool, above: bool
) -> None:
    criterion = Criterion("voltage", condition, 230)
    assert criterion.condition is Condition(condition)
    assert criterion.is_met_by(229.9) is below
    assert criterion.is_met_by(230) is equal
    assert criterion.is_met_by(230.1) is above


def test_the_conditions_are_the_six_comparisons_and_two_ranges() -> None:
    assert {c.value for c in Condition} == {"<", "<=", ">", ">=", "==", "!="} | {
        "between",
        "within_percent",
    }
    assert {c.value for c in Condition if c.is_range} == {"between", "within_percent"}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("condition", [c.value for c in Condition if not c.is_range])
def test_a_non_finite_measurement_never_meets_a_criterion(value: float, condition: str) -> None:
    assert Criterion("voltage", condition, 230).is_met_by(value) is False


@pytest.mark.parametrize("condition", ["=", "<>", "lt", "LT", "", None, 3, ["<"]])
def test_an_unknown_condition_is_refused(condition: object) -> None:
    with pytest.raises(InvalidValue) as raised:
        Criterion("voltage", condition, 230)
    assert raised.value.field == "criteria"


@pytest.mark.parametrize("metric", ["", "   ", None, 7])
def test_a_criterion_needs_a_metric_name(metric: object) -> None:
    with pytest.raises(InvalidValue):
        Criterion(metric, "<", 1)


@pytest.mark.parametrize("threshold", [math.nan, math.inf, -math.inf, True, False, "230", None])
def test_a_threshold_must_be_a_finite_number(threshold: object) -> None:
    with pytest.raises(InvalidValue):
        Criterion("voltage", "<", threshold)


def test_a_criterion_is_normalised() -> None:
    criterion = Criterion(" voltage ", "<=", 240, unit=" V ")
    assert criterion == Criterion("voltage", Condition.LE, 240.0, "V")
    assert isinstance(criterion.threshold, float)
    assert criterion.describe() == "voltage <= 240 V"


def test_a_criterion_is_a_frozen_value() -> None:
    criterion = Criterion("voltage", "<", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        criterion.threshold = 2.0


# -- test cases ------------------------------------------------------------------------


def test_a_test_case_starts_at_version_1_with_normalised_fields() -> None:
    case = a_case(name="  soak  ", tags=["b", " a ", "b", "", "  "])
    assert case.version == 1
    assert case.name == "soak"
    assert case.tags == ["a", "b"]


@pytest.mark.parametrize("name", ["", "  ", None, "x" * 201])
def test_a_test_case_needs_a_name(name: object) -> None:
    with pytest.raises(InvalidValue) as raised:
        a_case(name=name)
    assert raised.value.field == "name"


@pytest.mark.parametrize("criteria", [[], None])
def test_a_test_case_needs_at_least_one_criterion(criteria: object) -> None:
    with pytest.raises(InvalidValue) as raised:
        a_case(criteria=criteria)
    assert raised.value.field == "criteria"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration_s", -1),
        ("duration_s", 1.5),
        ("duration_s", True),
        ("duration_s", "60"),
        ("timeout_s", 0),
        ("timeout_s", MAX_TIMEOUT_S + 1),
        ("timeout_s", False),
        ("timeout_s", None),
    ],
)
def test_durations_are_whole_seconds_in_range(field: str, value: object) -> None:
    with pytest.raises(InvalidValue) as raised:
        a_case(**{field: value})
    assert raised.value.field == field


def test_the_extreme_durations_are_allowed() -> None:
    case = a_case(duration_s=0, timeout_s=1)
    assert (case.duration_s, case.timeout_s) == (0, 1)
    case = a_case(duration_s=MAX_TIMEOUT_S, timeout_s=MAX_TIMEOUT_S)
    assert case.timeout_s == MAX_TIMEOUT_S


def test_a_timeout_shorter_than_the_duration_is_refused() -> None:
    with pytest.raises(InvalidValue) as raised:
        a_case(duration_s=120, timeout_s=119)
    assert raised.value.field == "timeout_s"
    assert a_case(duration_s=120, timeout_s=120).timeout_s == 120


def test_a_real_revision_bumps_the_version_and_the_update_time() -> None:
    case = a_case()
    case.revise(LATER, description="now with load bank")
    assert case.version == 2
    assert case.updated_at == LATER
    assert case.description == "now with load bank"


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"name": "voltage under load"},
        {"name": "  voltage under load  "},
        {"criteria": [Criterion("voltage", "<=", 240.0)]},
        {"tags": []},
        {"duration_s": 60, "timeout_s": 300},
        {"default_parameters": {}},
    ],
)
def test_a_revision_that_changes_nothing_keeps_the_version(changes: dict[str, Any]) -> None:
    case = a_case()
    case.revise(LATER, **changes)
    assert case.version == 1
    assert case.updated_at == T0


def test_reordering_tags_is_not_a_change() -> None:
    case = a_case(tags=["a", "b"])
    case.revise(LATER, tags=["b", "a", "a"])
    assert case.version == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"criteria": [Criterion("voltage", "<", 240)]},
        {"criteria": [Criterion("voltage", "<=", 240), Criterion("current", "<", 16)]},
        {"duration_s": 30},
        {"timeout_s": 301},
        {"default_parameters": {"load": 0.5}},
        {"tags": ["soak"]},
        {"name": "voltage at full load"},
    ],
)
def test_each_kind_of_real_change_bumps_the_version_once(changes: dict[str, Any]) -> None:
    case = a_case()
    case.revise(LATER, **changes)
    assert case.version == 2
    case.revise(LATER, **changes)
    assert case.version == 2


def test_fields_outside_the_case_cannot_be_revised() -> None:
    case = a_case()
    with pytest.raises(InvalidValue) as raised:
        case.revise(LATER, version=7)
    assert raised.value.field == "version"
    assert case.version == 1


def test_a_revision_is_validated_like_a_new_case() -> None:
    case = a_case()
    with pytest.raises(InvalidValue):
        case.revise(LATER, criteria=[])


def test_a_refused_revision_leaves_the_case_as_it_was() -> None:
    case = a_case(duration_s=60, timeout_s=300)
    with pytest.raises(InvalidValue):
        case.revise(LATER, duration_s=1000)
    assert (case.duration_s, case.timeout_s, case.version) == (60, 300, 1)


def test_a_snapshot_is_frozen_and_outlives_later_edits() -> None:
    case = a_case(default_parameters={"load": 0.5}, tags=["soak"])
    snapshot = case.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.name = "other"

    case.revise(LATER, name="renamed", criteria=[Criterion("current", "<", 16)], tags=["x"])
    case.default_parameters["load"] = 1.0

    assert snapshot.version == 1
    assert snapshot.name == "voltage under load"
    assert snapshot.criteria == (Criterion("voltage", "<=", 240),)
    assert snapshot.parameters == {"load": 0.5}
    assert snapshot.tags == ("soak",)
    assert case.snapshot().version == 2


def test_run_parameters_overlay_the_case_defaults() -> None:
    snapshot = a_case(default_parameters={"load": 0.5, "cycles": 3}).snapshot()
    overlaid = with_parameters(snapshot, {"load": 1.0, "phase": "L2"})
    assert overlaid.parameters == {"load": 1.0, "cycles": 3, "phase": "L2"}
    assert snapshot.parameters == {"load": 0.5, "cycles": 3}
    assert dataclasses.replace(overlaid, parameters=snapshot.parameters) == snapshot


def test_an_empty_overlay_keeps_the_defaults() -> None:
    snapshot = a_case(default_parameters={"load": 0.5}).snapshot()
    assert with_parameters(snapshot, {}) == snapshot


# -- environments ------------------------------------------------------------------------


def test_an_environment_keeps_its_variables_as_text() -> None:
    environment = Environment(id="env-1", name=" chamber ", variables={"temp_c": 40})
    assert environment.name == "chamber"
    assert environment.variables == {"temp_c": "40"}


@pytest.mark.parametrize("name", ["", " ", None, "x" * 201])
def test_an_environment_needs_a_name(name: object) -> None:
    with pytest.raises(InvalidValue):
        Environment(id="env-1", name=name)


def test_an_environment_variable_needs_a_name() -> None:
    with pytest.raises(InvalidValue):
        Environment(id="env-1", name="chamber", variables={"": "x"})


def test_an_environment_snapshot_outlives_later_edits() -> None:
    environment = Environment(id="env-1", name="chamber", variables={"temp_c": "40"})
    snapshot = environment.snapshot()
    environment.revise(LATER, name="hot chamber", variables={"temp_c": "85"})
    assert environment.updated_at == LATER
    assert (snapshot.name, snapshot.variables) == ("chamber", {"temp_c": "40"})
    with pytest.raises(InvalidValue):
        environment.revise(LATER, id="env-2")
