"""Test cases and their success criteria."""

from __future__ import annotations

import enum
import math
import operator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain.editing import apply_edit
from domain.errors import InvalidValue
from domain.execution import Execution
from domain.names import clean_name, name_key

MAX_TIMEOUT_S = 7 * 24 * 3600


class Condition(enum.StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="

    def holds(self, value: float, threshold: float) -> bool:
        return _COMPARATORS[self](value, threshold)


_COMPARATORS = {
    Condition.LT: operator.lt,
    Condition.LE: operator.le,
    Condition.GT: operator.gt,
    Condition.GE: operator.ge,
    Condition.EQ: operator.eq,
    Condition.NE: operator.ne,
}


@dataclass(frozen=True)
class Criterion:
    """A success criterion: the measured `metric` must satisfy `condition threshold`."""

    metric: str
    condition: Condition
    threshold: float
    unit: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric.strip():
            raise InvalidValue("criteria", "metric must not be empty")
        try:
            condition = Condition(self.condition)
        except ValueError:
            allowed = " ".join(c.value for c in Condition)
            raise InvalidValue("criteria", f"condition must be one of {allowed}") from None
        object.__setattr__(self, "condition", condition)
        object.__setattr__(self, "metric", self.metric.strip())
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise InvalidValue("criteria", "threshold must be a number")
        if not math.isfinite(self.threshold):
            raise InvalidValue("criteria", "threshold must be a finite number")
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "unit", (self.unit or "").strip())

    def is_met_by(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return self.condition.holds(value, self.threshold)

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.metric} {self.condition.value} {self.threshold:g}{unit}"


def _check_seconds(field_name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(field_name, "must be a whole number of seconds")
    if value < minimum or value > MAX_TIMEOUT_S:
        raise InvalidValue(field_name, f"must be between {minimum} and {MAX_TIMEOUT_S} seconds")
    return value


@dataclass(frozen=True)
class TestCaseSnapshot:
    """A test case exactly as it was when a run started; history stays true after edits."""

    __test__ = False  # not a pytest test class

    id: str
    version: int
    name: str
    description: str
    criteria: tuple[Criterion, ...]
    duration_s: int
    timeout_s: int
    parameters: dict[str, Any]
    tags: tuple[str, ...]
    # how the case is executed: from its definition only, never from a run's parameters
    execution: Execution = field(default_factory=Execution)


@dataclass(eq=False)
class TestCase:
    __test__ = False

    id: str
    name: str
    criteria: list[Criterion]
    description: str = ""
    duration_s: int = 60
    timeout_s: int = 300
    default_parameters: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    execution: Execution = field(default_factory=Execution)
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        self.name = clean_name(self.name)
        self.criteria = list(self.criteria or [])
        if not self.criteria:
            raise InvalidValue("criteria", "a test case needs at least one success criterion")
        self.duration_s = _check_seconds("duration_s", self.duration_s, 0)
        self.timeout_s = _check_seconds("timeout_s", self.timeout_s, 1)
        if self.timeout_s < self.duration_s:
            raise InvalidValue("timeout_s", "must not be shorter than duration_s")
        self.tags = sorted({t.strip() for t in self.tags if t and t.strip()})
        self.default_parameters = dict(self.default_parameters or {})
        if not isinstance(self.execution, Execution):
            raise InvalidValue("execution", "must be an Execution")

    @property
    def name_key(self) -> str:
        return name_key(self.name)

    def revise(self, at: datetime, **changes: Any) -> None:
        """Apply an edit; any real change bumps the version so runs can tell versions apart."""
        allowed = {
            "name",
            "description",
            "criteria",
            "duration_s",
            "timeout_s",
            "default_parameters",
            "tags",
            "execution",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidValue(sorted(unknown)[0], "cannot be changed")
        before = self.snapshot()
        apply_edit(self, changes, self.__post_init__)
        if self.snapshot() != before:
            self.version += 1
            self.updated_at = at

    def snapshot(self) -> TestCaseSnapshot:
        return TestCaseSnapshot(
            id=self.id,
            version=self.version,
            name=self.name,
            description=self.description,
            criteria=tuple(self.criteria),
            duration_s=self.duration_s,
            timeout_s=self.timeout_s,
            parameters=dict(self.default_parameters),
            tags=tuple(self.tags),
            execution=self.execution,
        )


def with_parameters(snapshot: TestCaseSnapshot, overrides: dict[str, Any]) -> TestCaseSnapshot:
    """The snapshot a run executes: the case's defaults overlaid with the run's parameters.
    Only the parameters: how the case is executed stays as its definition says."""
    return replace(snapshot, parameters={**snapshot.parameters, **overrides})
