"""The trend of one test case: a metric's measured values over time per device, the
criterion they are judged against, where a device's firmware changed, and the pass rate per
day. Bounded: the newest `limit` results of the case in the window (domain.trends has the
rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from application.errors import NotFound
from application.ports import TrendScope
from application.ports import UnitOfWorkFactory as UowFactory
from domain.errors import InvalidValue
from domain.trends import (
    DayRate,
    FirmwareChange,
    TrendPoint,
    firmware_changes,
    metrics_of,
    pass_rate_per_day,
    points,
)

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000


@dataclass(frozen=True)
class TrendRequest:
    test_case_id: str
    metric: str | None = None  # None: the case's first criterion's metric
    model: str | None = None
    device_id: str | None = None
    finished_from: datetime | None = None
    finished_to: datetime | None = None
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True)
class Trend:
    test_case_id: str
    test_case_name: str
    metric: str | None
    metrics: list[str]  # the case's criteria's metrics, then any other measured
    condition: str | None  # of the case's current criterion for the metric (None: none)
    threshold: float | None
    unit: str
    points: list[TrendPoint]  # oldest first
    firmware_changes: list[FirmwareChange]
    pass_rate: list[DayRate]
    results: int  # how many results the window holds (at most limit)
    truncated: bool  # the window was cut at limit: older results exist or may


class ShowTrend:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, request: TrendRequest) -> Trend:
        if not 1 <= request.limit <= MAX_LIMIT:
            raise InvalidValue("limit", f"must be between 1 and {MAX_LIMIT}")
        if (
            request.finished_from
            and request.finished_to
            and request.finished_from > request.finished_to
        ):
            raise InvalidValue("from", "must not be after to")
        scope = TrendScope(
            request.test_case_id,
            request.limit,
            model=request.model,
            device_id=request.device_id,
            finished_from=request.finished_from,
            finished_to=request.finished_to,
        )
        with self.uow(read_only=True) as uow:
            case = uow.test_cases.get(request.test_case_id)
            if case is None:
                raise NotFound("test case", request.test_case_id)
            results = uow.trends.results(scope)
        named = [c.metric for c in case.criteria]
        metrics = list(dict.fromkeys([*named, *metrics_of(results)]))
        metric = request.metric or (metrics[0] if metrics else None)
        criterion = next((c for c in case.criteria if c.metric == metric), None)
        series = points(results, metric) if metric else []
        return Trend(
            test_case_id=case.id,
            test_case_name=case.name,
            metric=metric,
            metrics=metrics,
            condition=criterion.condition.value if criterion else None,
            threshold=criterion.threshold if criterion else None,
            unit=criterion.unit if criterion else "",
            points=series,
            firmware_changes=firmware_changes(series),
            pass_rate=pass_rate_per_day(results),
            results=len(results),
            truncated=len(results) == request.limit,
        )
