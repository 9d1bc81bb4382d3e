"""Test case and environment use cases, and that runs keep what they started with."""

from __future__ import annotations

import pytest

from application.errors import AlreadyExists, NotFound
from application.use_cases.catalog import CriterionInput
from domain.errors import InvalidValue
from domain.test_cases import Condition, Criterion

# -- test cases --------------------------------------------------------------------------


def test_a_created_test_case_is_stored_at_version_1(lab) -> None:
    case = lab.add_test_case(
        "voltage under load",
        criteria=[("voltage", "<=", 240), ("current", "<", 16)],
        duration_s=30,
        timeout_s=90,
        default_parameters={"load": 0.5},
        tags=["power", "soak"],
    )
    stored = lab.get_test_case(case.id)
    assert stored.version == 1
    assert stored.criteria == [
        Criterion("voltage", Condition.LE, 240.0),
        Criterion("current", Condition.LT, 16.0),
    ]
    assert (stored.duration_s, stored.timeout_s) == (30, 90)
    assert stored.default_parameters == {"load": 0.5}
    assert stored.tags == ["power", "soak"]


@pytest.mark.parametrize(
    "details",
    [
        {"criteria": []},
        {"criteria": [("voltage", "~", 1)]},
        {"criteria": [("voltage", "<", float("nan"))]},
        {"duration_s": 100, "timeout_s": 50},
    ],
)
def test_an_invalid_test_case_is_not_stored(lab, details) -> None:
    with pytest.raises(InvalidValue):
        lab.add_test_case("broken", **details)
    assert lab.store.test_cases == {}


def test_test_case_names_are_unique(lab) -> None:
    first = lab.add_test_case("soak")
    other = lab.add_test_case("burst")
    with pytest.raises(AlreadyExists):
        lab.add_test_case(" soak ")
    with pytest.raises(AlreadyExists):
        lab.update_test_case(other.id, {"name": "soak"})
    lab.update_test_case(first.id, {"name": "soak", "description": "kept its own name"})
    assert lab.get_test_case(other.id).name == "burst"


def test_editing_a_test_case_bumps_its_version_only_on_a_real_change(lab) -> None:
    case = lab.add_test_case("soak", criteria=[("voltage", "<=", 240)])
    lab.clock.advance(60)
    lab.update_test_case(case.id, {"criteria": [CriterionInput("voltage", "<=", 240)]})
    assert lab.get_test_case(case.id).version == 1
    updated = lab.update_test_case(case.id, {"criteria": [CriterionInput("voltage", "<", 230)]})
    assert updated.version == 2
    stored = lab.get_test_case(case.id)
    assert stored.version == 2
    assert stored.criteria == [Criterion("voltage", Condition.LT, 230.0)]
    assert stored.updated_at == lab.clock.now()


def test_a_refused_edit_leaves_the_stored_case_alone(lab) -> None:
    case = lab.add_test_case("soak", duration_s=60, timeout_s=300)
    with pytest.raises(InvalidValue):
        lab.update_test_case(case.id, {"duration_s": 1000})
    stored = lab.get_test_case(case.id)
    assert (stored.duration_s, stored.version) == (60, 1)


def test_a_deleted_test_case_is_gone(lab) -> None:
    case = lab.add_test_case("soak")
    lab.delete_test_case(case.id)
    with pytest.raises(NotFound):
        lab.get_test_case(case.id)
    with pytest.raises(NotFound):
        lab.delete_test_case(case.id)
    with pytest.raises(NotFound):
        lab.update_test_case(case.id, {"description": "x"})


# -- environments ------------------------------------------------------------------------


def test_environment_crud(lab) -> None:
    environment = lab.add_environment("chamber", variables={"temp_c": "40"})
    assert lab.get_environment(environment.id).variables == {"temp_c": "40"}
    lab.update_environment(environment.id, {"variables": {"temp_c": "85"}})
    assert lab.get_environment(environment.id).variables == {"temp_c": "85"}
    with pytest.raises(AlreadyExists):
        lab.add_environment("chamber")
    lab.delete_environment(environment.id)
    with pytest.raises(NotFound):
        lab.get_environment(environment.id)


def test_environment_names_are_unique_on_update(lab) -> None:
    chamber = lab.add_environment("chamber")
    lab.add_environment("bench")
    with pytest.raises(AlreadyExists):
        lab.update_environment(chamber.id, {"name": "bench"})
    lab.update_environment(chamber.id, {"name": "chamber", "description": "same name is fine"})
    assert lab.get_environment(chamber.id).name == "chamber"


def test_an_invalid_environment_edit_is_refused(lab) -> None:
    chamber = lab.add_environment("chamber")
    with pytest.raises(InvalidValue):
        lab.update_environment(chamber.id, {"name": " "})
    assert lab.get_environment(chamber.id).name == "chamber"


# -- runs keep their snapshots -----------------------------------------------------------------


def test_a_run_keeps_its_snapshots_after_the_catalog_changes(lab) -> None:
    device = lab.add_device("meter-01")
    case = lab.add_test_case(
        "soak", criteria=[("voltage", "<=", 240)], default_parameters={"load": 0.5}
    )
    environment = lab.add_environment("chamber", variables={"temp_c": "40"})
    run = lab.start([device], [case], environment, parameters={"cycles": 3})

    lab.update_test_case(
        case.id,
        {"name": "soak v2", "criteria": [CriterionInput("voltage", "<", 200)], "timeout_s": 900},
    )
    lab.update_environment(environment.id, {"variables": {"temp_c": "85"}})
    stored = lab.get_test_run(run.id)
    (snapshot,) = stored.test_cases
    assert (snapshot.version, snapshot.name, snapshot.timeout_s) == (1, "soak", 300)
    assert snapshot.criteria == (Criterion("voltage", Condition.LE, 240.0),)
    assert snapshot.parameters == {"load": 0.5, "cycles": 3}
    assert stored.environment.variables == {"temp_c": "40"}

    lab.delete_test_case(case.id)
    lab.delete_environment(environment.id)
    stored = lab.get_test_run(run.id)
    assert stored.test_cases == (snapshot,)
    assert stored.environment.name == "chamber"

    lab.record_result(run.id, [])
    assert lab.get_test_run(run.id).results[(case.id, device.id)].measurements[0].threshold == 240
