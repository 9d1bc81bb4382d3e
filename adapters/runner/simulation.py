"""Plausible measured values for success criteria: on the passing side of every criterion, or
on the failing side of one of them, with noise that scales with the threshold.

Criteria on the same metric are satisfied together (e.g. `voltage >= 207` and
`voltage <= 253`, or `voltage between 207 and 253`, give values between the two). Each metric
comes as a series of `SAMPLES` samples spread over the case's duration, the last one its
final value: every sample of a passing metric passes, every sample of the failing one fails
on the same side, so whatever statistic a criterion judges (`of`) comes out as meant."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence

from domain.test_cases import Condition, Criterion
from domain.test_runs import Observation

_ATTEMPTS = 50
SAMPLES = 10


def simulate_observations(
    criteria: Iterable[Criterion],
    rng: random.Random,
    pass_probability: float,
    duration_s: float = 0,
) -> tuple[bool, tuple[Observation, ...]]:
    """Whether this (test case, device) was meant to pass, and a series per metric.
    Failing means one metric, chosen at random, violates one of its criteria."""
    groups: dict[str, list[Criterion]] = {}
    for criterion in criteria:
        groups.setdefault(criterion.metric, []).append(criterion)
    passes = rng.random() < pass_probability
    failing_metric = None if passes else rng.choice(sorted(groups))
    observations = []
    for metric, group in groups.items():
        if metric == failing_metric:
            criterion = rng.choice(group)
            first = failing_value(criterion, rng)
            values = [first, *(_near(first, criterion, rng) for _ in range(SAMPLES - 1))]
        else:
            values = [passing_value(group, rng) for _ in range(SAMPLES)]
        unit = next((c.unit for c in group if c.unit), "")
        step = duration_s / (SAMPLES - 1)
        samples = tuple((round(i * step, 3), v) for i, v in enumerate(values))
        observations.append(Observation(metric, values[-1], unit, samples))
    return passes, tuple(observations)


def _near(value: float, criterion: Criterion, rng: random.Random) -> float:
    """Another failing value on the same side as `value` (a range fails below or above it)."""
    for _ in range(_ATTEMPTS):
        other = value + (value - _anchor(criterion)) * rng.uniform(-0.5, 0.5)
        if math.isfinite(other) and not criterion.is_met_by(other):
            return other
    return value


def _anchor(criterion: Criterion) -> float:
    """The value the failing side is measured from: the threshold or the range's middle."""
    bounds = criterion.bounds
    return (bounds[0] + bounds[1]) / 2 if bounds else criterion.threshold  # type: ignore[return-value]


def failing_value(criterion: Criterion, rng: random.Random) -> float:
    """A value that does not meet `criterion`."""
    bounds = criterion.bounds
    if bounds is not None:
        return _outside(criterion, bounds, rng)
    threshold: float = criterion.threshold  # type: ignore[assignment]
    for _ in range(_ATTEMPTS):
        distance = _distance(threshold, rng)
        value = {
            Condition.LT: threshold + distance,
            Condition.LE: threshold + distance,
            Condition.GT: threshold - distance,
            Condition.GE: threshold - distance,
            Condition.EQ: threshold + rng.choice((-1, 1)) * distance,
            Condition.NE: threshold,
        }[criterion.condition]
        value = _tidy(value, lambda v: not criterion.is_met_by(v))
        if math.isfinite(value) and not criterion.is_met_by(value):
            return value
    raise ValueError(f"cannot simulate a value failing {criterion.describe()}")


def _outside(criterion: Criterion, bounds: tuple[float, float], rng: random.Random) -> float:
    low, high = bounds
    span = high - low or _distance(low, rng)
    for _ in range(_ATTEMPTS):
        distance = span * (0.05 + abs(rng.gauss(0, 0.5)))
        value = low - distance if rng.random() < 0.5 else high + distance
        value = _tidy(value, lambda v: not criterion.is_met_by(v))
        if math.isfinite(value) and not criterion.is_met_by(value):
            return value
    raise ValueError(f"cannot simulate a value failing {criterion.describe()}")


def passing_value(criteria: Sequence[Criterion], rng: random.Random) -> float:
    """A value that meets every criterion of one metric (the nearest try when they contradict
    each other, e.g. `> 10` and `< 5`: the result then fails, as it would on a real bench)."""
    equal = [c.threshold for c in criteria if c.condition is Condition.EQ]
    ranges = [c.bounds for c in criteria if c.bounds is not None]
    lows = [c.threshold for c in criteria if c.condition in (Condition.GT, Condition.GE)]
    highs = [c.threshold for c in criteria if c.condition in (Condition.LT, Condition.LE)]
    lows += [low for low, _ in ranges]
    highs += [high for _, high in ranges]
    low, high = (max(lows) if lows else None), (min(highs) if highs else None)

    def meets_all(value: float) -> bool:
        return all(c.is_met_by(value) for c in criteria)

    value = 0.0
    for _ in range(_ATTEMPTS):
        if equal:
            value = equal[0]
        elif low is not None and high is not None:
            middle, half = (low + high) / 2, (high - low) / 2
            value = middle + rng.uniform(-0.8, 0.8) * half if half > 0 else middle
        elif low is not None:
            value = low + _distance(low, rng)
        elif high is not None:
            value = high - _distance(high, rng)
        else:  # only "!=": anything near the excluded values
            anchor: float = criteria[0].threshold  # type: ignore[assignment]
            value = anchor + rng.choice((-1, 1)) * _distance(anchor, rng)
        value = _tidy(value, meets_all)
        if meets_all(value):
            return value
    return value


def _distance(threshold: float, rng: random.Random) -> float:
    """How far a measured value lies from the threshold: a few percent of it, sometimes more."""
    scale = abs(threshold) * 0.05 if threshold else 1.0
    return scale * (0.05 + abs(rng.gauss(0, 1)))


def _tidy(value: float, still_fine: Callable[[float], bool]) -> float:
    """Round like an instrument would (4 significant digits past the point), unless
    rounding moved the value across the threshold."""
    if not math.isfinite(value) or value == 0:
        return value
    digits = max(0, 4 - math.floor(math.log10(abs(value))))
    rounded = round(value, digits)
    return rounded if still_fine(rounded) else value
