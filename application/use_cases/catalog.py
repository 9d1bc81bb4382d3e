"""Use cases for the catalog a run is built from: test cases and environments."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from application.auth.errors import Forbidden
from application.errors import AlreadyExists, NotFound
from application.pagination import Page, paginate
from application.ports import Clock, IdGenerator, NameFilter, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from domain.environments import Environment
from domain.execution import Execution
from domain.test_cases import Criterion, TestCase
from domain.users import Permission


def by_name_key(item: TestCase | Environment) -> tuple:
    return (item.name, item.id)


# -- test cases ------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionInput:
    """A criterion as a client sends it: `threshold` for `<` ... `!=`, `min` and `max` for
    `between`, `nominal` and `percent` for `within_percent` (domain.test_cases.Criterion)."""

    metric: str
    condition: str
    threshold: float | None = None
    unit: str = ""
    min: float | None = None
    max: float | None = None
    nominal: float | None = None
    percent: float | None = None
    of: str = "final"
    marginal: dict[str, float] | None = None


@dataclass(frozen=True)
class ExecutionInput:
    """How the case is executed; the default leaves it to the runner's default executor."""

    executor: str = ""
    command: list[str] = field(default_factory=list)
    per_device: bool = True


@dataclass(frozen=True)
class TestCaseInput:
    __test__ = False

    name: str
    criteria: list[CriterionInput]
    description: str = ""
    duration_s: int = 60
    timeout_s: int = 300
    default_parameters: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    execution: ExecutionInput = field(default_factory=ExecutionInput)


def _criteria(inputs: list[CriterionInput]) -> list[Criterion]:
    return [Criterion.from_json(asdict(c)) for c in inputs]


def _execution(data: ExecutionInput) -> Execution:
    return Execution(data.executor, tuple(data.command), data.per_device)


def _refuse_execution_change() -> None:
    """What a test case executes runs on a runner host with the runner's rights: deciding it
    is a permission of its own (admins), not part of editing the catalog."""
    permission = Permission.DEFINE_EXECUTION
    error = Forbidden(
        f"only a user with permission {permission.value} (role admin) may set how a test case "
        "is executed"
    )
    error.errors = {"execution": [f"needs permission {permission.value}"]}
    raise error


def _load_case(uow: UnitOfWork, test_case_id: str) -> TestCase:
    case = uow.test_cases.get(test_case_id)
    if case is None:
        raise NotFound("test case", test_case_id)
    return case


def _ensure_case_name_free(uow: UnitOfWork, name: str, own_id: str | None = None) -> None:
    other = uow.test_cases.get_by_name(name.strip())
    if other is not None and other.id != own_id:
        raise AlreadyExists("test case", "name", name.strip(), other.name, other.id)


class CreateTestCase:
    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self, data: TestCaseInput, may_define_execution: bool = False) -> TestCase:
        """`may_define_execution`: the caller holds Permission.DEFINE_EXECUTION; without it
        the case can only leave its execution to the runner's default."""
        execution = _execution(data.execution)
        if not execution.is_runner_default and not may_define_execution:
            _refuse_execution_change()
        now = self.clock.now()
        case = TestCase(
            id=self.ids.new_id(),
            name=data.name,
            criteria=_criteria(data.criteria),
            description=data.description,
            duration_s=data.duration_s,
            timeout_s=data.timeout_s,
            default_parameters=data.default_parameters,
            tags=data.tags,
            execution=execution,
            created_at=now,
            updated_at=now,
        )
        with self.uow() as uow:
            _ensure_case_name_free(uow, case.name)
            uow.test_cases.add(case)
            uow.commit()
        return case


class UpdateTestCase:
    def __init__(self, uow: UowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(
        self, test_case_id: str, changes: dict[str, Any], may_define_execution: bool = False
    ) -> TestCase:
        """`may_define_execution` as in CreateTestCase: without it, an `execution` equal to
        the current one is fine (a form sending everything back), a different one is not."""
        changes = dict(changes)
        if "criteria" in changes:
            changes["criteria"] = _criteria(changes["criteria"])
        if "execution" in changes:
            changes["execution"] = _execution(changes["execution"])
        with self.uow() as uow:
            case = _load_case(uow, test_case_id)
            if (
                "execution" in changes
                and changes["execution"] != case.execution
                and not may_define_execution
            ):
                _refuse_execution_change()
            if isinstance(changes.get("name"), str):
                _ensure_case_name_free(uow, changes["name"], own_id=case.id)
            case.revise(self.clock.now(), **changes)
            uow.test_cases.update(case)
            uow.commit()
            return case


class DeleteTestCase:
    """Runs keep their own snapshot of the case, so deleting it never rewrites history."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, test_case_id: str) -> None:
        with self.uow() as uow:
            uow.test_cases.remove(_load_case(uow, test_case_id))
            uow.commit()


class GetTestCase:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, test_case_id: str) -> TestCase:
        with self.uow() as uow:
            return _load_case(uow, test_case_id)


class ListTestCases:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(
        self, where: NameFilter, limit: int | None = None, cursor: str | None = None
    ) -> Page[TestCase]:
        with self.uow() as uow:
            return paginate(
                "test_cases",
                lambda n, after: uow.test_cases.list(where, n, after),
                by_name_key,
                limit,
                cursor,
            )


# -- environments ----------------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentInput:
    name: str
    description: str = ""
    variables: dict[str, str] = field(default_factory=dict)


def _load_environment(uow: UnitOfWork, environment_id: str) -> Environment:
    environment = uow.environments.get(environment_id)
    if environment is None:
        raise NotFound("environment", environment_id)
    return environment


def _ensure_environment_name_free(uow: UnitOfWork, name: str, own_id: str | None = None) -> None:
    other = uow.environments.get_by_name(name.strip())
    if other is not None and other.id != own_id:
        raise AlreadyExists("environment", "name", name.strip(), other.name, other.id)


class CreateEnvironment:
    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self, data: EnvironmentInput) -> Environment:
        now = self.clock.now()
        environment = Environment(
            id=self.ids.new_id(),
            name=data.name,
            description=data.description,
            variables=data.variables,
            created_at=now,
            updated_at=now,
        )
        with self.uow() as uow:
            _ensure_environment_name_free(uow, environment.name)
            uow.environments.add(environment)
            uow.commit()
        return environment


class UpdateEnvironment:
    def __init__(self, uow: UowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(self, environment_id: str, changes: dict[str, Any]) -> Environment:
        with self.uow() as uow:
            environment = _load_environment(uow, environment_id)
            if isinstance(changes.get("name"), str):
                _ensure_environment_name_free(uow, changes["name"], own_id=environment.id)
            environment.revise(self.clock.now(), **changes)
            uow.environments.update(environment)
            uow.commit()
            return environment


class DeleteEnvironment:
    """Runs keep their own snapshot of the environment, so they stay readable."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, environment_id: str) -> None:
        with self.uow() as uow:
            uow.environments.remove(_load_environment(uow, environment_id))
            uow.commit()


class GetEnvironment:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, environment_id: str) -> Environment:
        with self.uow() as uow:
            return _load_environment(uow, environment_id)


class ListEnvironments:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(
        self, where: NameFilter, limit: int | None = None, cursor: str | None = None
    ) -> Page[Environment]:
        with self.uow() as uow:
            return paginate(
                "environments",
                lambda n, after: uow.environments.list(where, n, after),
                by_name_key,
                limit,
                cursor,
            )
