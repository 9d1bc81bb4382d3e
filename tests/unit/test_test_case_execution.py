"""How a test case is executed: a value of its own on the case, versioned with it, set only
with permission executions:define, and never changed by a run's parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from application.auth.errors import Forbidden
from application.ports import NameFilter
from application.use_cases.catalog import CriterionInput, ExecutionInput, TestCaseInput
from domain.errors import InvalidValue
from domain.execution import MAX_ARGUMENT_LENGTH, MAX_COMMAND_ARGUMENTS, Execution
from domain.test_cases import Criterion, TestCase, with_parameters

MEASURE = ("/opt/lab/measure", "--bench", "3")


def test_the_default_leaves_the_executor_to_the_runner():
    assert Execution() == Execution("", (), True)
    assert Execution().is_runner_default
    assert not Execution("simulate").is_runner_default


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"executor": "sh"}, "executor must be one of"),
        ({"executor": 3}, "executor must be one of"),
        ({"executor": "command"}, "needs a command"),
        ({"executor": "command", "command": (" ",)}, "needs a command"),
        ({"executor": "command", "command": "rm -rf /"}, "list of strings"),
        ({"executor": "command", "command": ("ok", 3)}, r"command\[1\] must be a string"),
        ({"executor": "command", "command": ("ok", "a\x00b")}, "NUL"),
        ({"executor": "command", "command": ("ok", "\udfff")}, "valid Unicode"),
        (
            {"executor": "command", "command": ("x" * (MAX_ARGUMENT_LENGTH + 1),)},
            "at most 4096",
        ),
        (
            {"executor": "command", "command": ("x",) * (MAX_COMMAND_ARGUMENTS + 1)},
            "at most 64 parts",
        ),
        ({"executor": "simulate", "command": MEASURE}, "only the command executor takes"),
        ({"command": MEASURE}, "only the command executor takes"),
        ({"executor": "influxdb", "per_device": False}, "only the command executor can run"),
        ({"executor": "command", "command": MEASURE, "per_device": "no"}, "true or false"),
    ],
)
def test_an_execution_that_cannot_be_is_refused(kwargs, problem):
    with pytest.raises(InvalidValue, match=problem) as refused:
        Execution(**kwargs)
    assert refused.value.field == "execution"


def test_an_execution_round_trips_through_json():
    execution = Execution("command", MEASURE, per_device=False)
    assert Execution.from_json(execution.as_json()) == execution
    assert Execution.from_json(None) == Execution()
    with pytest.raises(InvalidValue):
        Execution.from_json({"executor": "command", "command": "measure --all"})


def a_case(**details) -> TestCase:
    return TestCase(id="c1", name="voltage", criteria=[Criterion("voltage", "<=", 240)], **details)


def test_changing_the_execution_bumps_the_version_and_runs_keep_theirs():
    case = a_case(execution=Execution("simulate"))
    before = case.snapshot()
    case.revise(datetime(2026, 3, 1, tzinfo=UTC), execution=Execution("command", MEASURE))
    assert case.version == 2
    assert before.execution == Execution("simulate")
    assert case.snapshot().execution == Execution("command", MEASURE)
    case.revise(datetime(2026, 3, 2, tzinfo=UTC), execution=Execution("command", MEASURE))
    assert case.version == 2  # the same again is no change


def test_a_runs_parameters_overlay_the_data_but_never_the_execution():
    case = a_case(execution=Execution("command", MEASURE), default_parameters={"load_kw": 1})
    hostile = {"executor": "command", "command": ["sh", "-c", "id"], "command_per_device": False}
    run_case = with_parameters(case.snapshot(), hostile)
    assert run_case.execution == Execution("command", MEASURE)
    assert run_case.parameters == {"load_kw": 1, **hostile}


# -- who may set it ----------------------------------------------------------------------------


def case_input(name="voltage", **details) -> TestCaseInput:
    return TestCaseInput(name, [CriterionInput("voltage", "<=", 240)], **details)


def test_without_the_permission_a_case_leaves_execution_to_the_runner(lab):
    created = lab.create_test_case(case_input())  # an engineer, say
    assert created.execution == Execution()
    with pytest.raises(Forbidden, match="executions:define") as refused:
        lab.create_test_case(
            case_input(name="other", execution=ExecutionInput("command", list(MEASURE)))
        )
    assert refused.value.errors == {"execution": ["needs permission executions:define"]}
    assert [c.id for c in lab.list_test_cases(NameFilter()).items] == [created.id]


def test_without_the_permission_the_execution_cannot_change(lab):
    case = lab.add_test_case("soak", execution=ExecutionInput("command", list(MEASURE)))
    with pytest.raises(Forbidden):
        lab.update_test_case(case.id, {"execution": ExecutionInput("command", ["/bin/sh"])})
    with pytest.raises(Forbidden):
        lab.update_test_case(case.id, {"execution": ExecutionInput()})
    # sending the execution back unchanged (a form that sends everything) is fine
    same = lab.update_test_case(
        case.id, {"execution": ExecutionInput("command", list(MEASURE)), "description": "x"}
    )
    assert same.execution == Execution("command", MEASURE) and same.version == 2
    assert lab.get_test_case(case.id).execution == Execution("command", MEASURE)


def test_with_the_permission_the_execution_changes_and_the_version_bumps(lab):
    case = lab.add_test_case("soak")
    changed = lab.update_test_case(
        case.id,
        {"execution": ExecutionInput("command", list(MEASURE), per_device=False)},
        may_define_execution=True,
    )
    assert changed.version == 2
    assert lab.get_test_case(case.id).execution == Execution("command", MEASURE, False)
