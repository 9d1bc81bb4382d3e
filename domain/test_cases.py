"""Test cases and their success criteria."""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain.editing import apply_versioned_edit
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
    BETWEEN = "between"  # min <= value <= max
    WITHIN_PERCENT = "within_percent"  # |value - nominal| <= percent % of |nominal|

    @property
    def is_range(self) -> bool:
        """Judged against two bounds instead of one threshold."""
        return self in (Condition.BETWEEN, Condition.WITHIN_PERCENT)

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


class Statistic(enum.StrEnum):
    """What of a measured series a criterion judges (`of`)."""

    FINAL = "final"  # the reported value (the last sample when only samples came)
    ALL = "all"  # every sample must pass
    P95 = "p95"  # the 95th percentile, nearest rank
    MEAN = "mean"
    MAX = "max"
    MIN = "min"


class Outcome(enum.StrEnum):
    """How one criterion came out. Marginal is a pass that lies in the criterion's marginal
    band: it passed, with a warning."""

    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue("criteria", f"{name} must be a number")
    if not math.isfinite(value):
        raise InvalidValue("criteria", f"{name} must be a finite number")
    return float(value)


def _optional_number(name: str, value: Any) -> float | None:
    return None if value is None else _number(name, value)


@dataclass(frozen=True)
class MarginalBand:
    """Where a passing value is only marginal: min <= value <= max (either bound may be
    open). E.g. `voltage_error_pct <= 1.0` with the band `{"min": 0.8}`: 0.9 % passes, but
    marginally."""

    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        low = _optional_number("marginal.min", self.min)
        high = _optional_number("marginal.max", self.max)
        if low is None and high is None:
            raise InvalidValue("criteria", "a marginal band needs min, max or both")
        if low is not None and high is not None and low > high:
            raise InvalidValue("criteria", "marginal.min must not be greater than marginal.max")
        object.__setattr__(self, "min", low)
        object.__setattr__(self, "max", high)

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def as_json(self) -> dict[str, float]:
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


@dataclass(frozen=True)
class Criterion:
    """A success criterion on the measured `metric`: `condition threshold` (`<` ... `!=`),
    `between` min and max, or `within_percent` percent of a nominal value; judged on the
    final value or on a statistic of its samples (`of`). A passing value inside the optional
    `marginal` band is marginal."""

    metric: str
    condition: Condition
    threshold: float | None = None
    unit: str = ""
    min: float | None = None
    max: float | None = None
    nominal: float | None = None
    percent: float | None = None
    of: Statistic = Statistic.FINAL
    marginal: MarginalBand | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric.strip():
            raise InvalidValue("criteria", "metric must not be empty")
        try:
            condition = Condition(self.condition)
        except ValueError:
            allowed = " ".join(c.value for c in Condition)
            raise InvalidValue("criteria", f"condition must be one of {allowed}") from None
        try:
            of = Statistic(self.of or Statistic.FINAL)
        except ValueError:
            allowed = ", ".join(s.value for s in Statistic)
            raise InvalidValue("criteria", f"of must be one of {allowed}") from None
        set_ = object.__setattr__
        set_(self, "condition", condition)
        set_(self, "of", of)
        set_(self, "metric", self.metric.strip())
        set_(self, "unit", (self.unit or "").strip())
        if isinstance(self.marginal, Mapping):
            band = MarginalBand(self.marginal.get("min"), self.marginal.get("max"))
            set_(self, "marginal", band)
        elif self.marginal is not None and not isinstance(self.marginal, MarginalBand):
            raise InvalidValue("criteria", "marginal must be an object with min and/or max")
        needs = {
            Condition.BETWEEN: ("min", "max"),
            Condition.WITHIN_PERCENT: ("nominal", "percent"),
        }.get(condition, ("threshold",))
        for name in ("threshold", "min", "max", "nominal", "percent"):
            value = getattr(self, name)
            if name in needs:
                if value is None:
                    raise InvalidValue("criteria", f"{condition.value} needs {name}")
                set_(self, name, _number(name, value))
            elif value is not None:
                raise InvalidValue("criteria", f"{name} does not belong to {condition.value}")
        if condition is Condition.BETWEEN and self.min > self.max:  # type: ignore[operator]
            raise InvalidValue("criteria", "min must not be greater than max")
        if condition is Condition.WITHIN_PERCENT and self.percent <= 0:  # type: ignore[operator]
            raise InvalidValue("criteria", "percent must be greater than 0")

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The pass region of a range criterion, both ends included; None for a threshold."""
        if self.condition is Condition.BETWEEN:
            return self.min, self.max  # type: ignore[return-value]
        if self.condition is Condition.WITHIN_PERCENT:
            nominal, percent = self.nominal, self.percent
            spread = abs(nominal) * percent / 100  # type: ignore[arg-type,operator]
            return nominal - spread, nominal + spread  # type: ignore[operator]
        return None

    def is_met_by(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        bounds = self.bounds
        if bounds is not None:
            return bounds[0] <= value <= bounds[1]
        return self.condition.holds(value, self.threshold)  # type: ignore[arg-type]

    def outcome_of(self, value: float) -> Outcome:
        """Pass, marginal (a pass inside the marginal band) or fail; never marginal for a
        value that fails."""
        if not self.is_met_by(value):
            return Outcome.FAIL
        if self.marginal is not None and self.marginal.contains(value):
            return Outcome.MARGINAL
        return Outcome.PASS

    def describe(self) -> str:
        return f"{self.metric} {self.expectation()}"

    def expectation(self) -> str:
        """What the value must be, without the metric: `<= 240 V`, `between 1 and 2 V`."""
        unit = f" {self.unit}" if self.unit else ""
        if self.condition is Condition.BETWEEN:
            text = f"between {self.min:g} and {self.max:g}{unit}"
        elif self.condition is Condition.WITHIN_PERCENT:
            text = f"within {self.percent:g} % of {self.nominal:g}{unit}"
        else:
            text = f"{self.condition.value} {self.threshold:g}{unit}"
        if self.of is not Statistic.FINAL:
            text += f" ({self.of.value} of samples)"
        return text

    def as_json(self) -> dict[str, Any]:
        """The JSON form stored with test cases and runs and sent in jobs: only the numbers
        its condition uses; `of` and `marginal` only when not the default (a plain criterion
        reads exactly as it did before they were added)."""
        data: dict[str, Any] = {"metric": self.metric, "condition": self.condition.value}
        for name in ("threshold", "min", "max", "nominal", "percent"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        data["unit"] = self.unit
        if self.of is not Statistic.FINAL:
            data["of"] = self.of.value
        if self.marginal is not None:
            data["marginal"] = self.marginal.as_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Criterion:
        """The inverse of as_json; criteria stored before the range kinds (metric, condition,
        threshold, unit) load unchanged."""
        return cls(
            metric=data["metric"],
            condition=data["condition"],
            threshold=data.get("threshold"),
            unit=data.get("unit") or "",
            min=data.get("min"),
            max=data.get("max"),
            nominal=data.get("nominal"),
            percent=data.get("percent"),
            of=data.get("of") or Statistic.FINAL,
            marginal=data.get("marginal"),
        )


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
        apply_versioned_edit(self, at, changes, allowed)

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
