"""Plausible measured values for success criteria: on the passing side of every criterion, or
on the failing side of one of them, with noise that scales with the threshold.

Criteria on the same metric are satisfied together (e.g. `voltage >= 207` and
`voltage <= 253` give one value between the two)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence

from domain.test_cases import Condition, Criterion
from domain.test_runs import Observation

_ATTEMPTS = 50


def simulate_observations(
    criteria: Iterable[Criterion], rng: random.Random, pass_probability: float
) -> tuple[bool, tuple[Observation, ...]]:
    """Whether this (test case, device) was meant to pass, and one value per metric.
    Failing means one metric, chosen at random, violates one of its criteria."""
    groups: dict[str, list[Criterion]] = {}
    for criterion in criteria:
        groups.setdefault(criterion.metric, []).append(criterion)
    passes = rng.random() < pass_probability
    failing_metric = None if passes else rng.choice(sorted(groups))
    observations = []
    for metric, group in groups.items():
        if metric == failing_metric:
            value = failing_value(rng.choice(group), rng)
        else:
            value = passing_value(group, rng)
        unit = next((c.unit for c in group if c.unit), "")
        observations.append(Observation(metric, value, unit))
    return passes, tuple(observations)


def failing_value(criterion: Criterion, rng: random.Random) -> float:
    """A value that does not meet `criterion`."""
    threshold = criterion.threshold
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


def passing_value(criteria: Sequence[Criterion], rng: random.Random) -> float:
    """A value that meets every criterion of one metric (the nearest try when they contradict
    each other, e.g. `> 10` and `< 5`: the result then fails, as it would on a real bench)."""
    equal = [c.threshold for c in criteria if c.condition is Condition.EQ]
    lows = [c.threshold for c in criteria if c.condition in (Condition.GT, Condition.GE)]
    highs = [c.threshold for c in criteria if c.condition in (Condition.LT, Condition.LE)]
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
            anchor = criteria[0].threshold
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
