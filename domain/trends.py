"""Trends of one test case: its measured values over time, where a device's firmware changed,
and its pass rate per day. Pure rules over the results a store hands over (newest first)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from domain.comparison import FAIL, PASSED, Measured


@dataclass(frozen=True)
class TrendResult:
    """One stored result of the case, with the device as the run started it."""

    run_id: str
    finished_at: datetime
    device_id: str
    device_name: str
    model: str
    firmware: str
    verdict: str
    measurements: tuple[Measured, ...]


@dataclass(frozen=True)
class TrendPoint:
    """A result's measured value of the trend's metric."""

    result: TrendResult
    value: float


@dataclass(frozen=True)
class FirmwareChange:
    """A device's point whose firmware differs from that device's previous point."""

    device_id: str
    at: datetime
    run_id: str
    previous: str
    firmware: str


@dataclass(frozen=True)
class DayRate:
    day: date
    passed: int
    failed: int
    inconclusive: int


def points(results: Iterable[TrendResult], metric: str) -> list[TrendPoint]:
    """The measured values of `metric`, oldest first; a result without a value has no point."""
    found = []
    for r in results:
        value = next((m.value for m in r.measurements if m.metric == metric), None)
        if value is None:
            continue
        found.append(TrendPoint(r, value))
    return sorted(found, key=_when)


def firmware_changes(series: Iterable[TrendPoint]) -> list[FirmwareChange]:
    """Per device, each point (oldest first) on another firmware than its previous point."""
    last: dict[str, str] = {}
    changes = []
    for r in (p.result for p in sorted(series, key=_when)):
        before = last.get(r.device_id)
        if before is not None and before != r.firmware:
            changes.append(FirmwareChange(r.device_id, r.finished_at, r.run_id, before, r.firmware))
        last[r.device_id] = r.firmware
    return changes


def pass_rate_per_day(results: Iterable[TrendResult]) -> list[DayRate]:
    """Results per UTC day (of the run's finish) by verdict, oldest day first; a marginal
    result counts as passed."""
    days: dict[date, list[int]] = {}
    for r in results:
        counts = days.setdefault(r.finished_at.date(), [0, 0, 0])
        counts[0 if r.verdict in PASSED else 1 if r.verdict == FAIL else 2] += 1
    return [DayRate(day, *counts) for day, counts in sorted(days.items())]


def metrics_of(results: Iterable[TrendResult]) -> list[str]:
    """The metrics measured in these results, by name."""
    return sorted({m.metric for r in results for m in r.measurements})


def _when(point: TrendPoint) -> tuple[datetime, str, str]:
    r = point.result
    return (r.finished_at, r.run_id, r.device_id)
