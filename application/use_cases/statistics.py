"""Numbers for the dashboard."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from application.ports import Clock, LabStatistics
from application.ports import UnitOfWorkFactory as UowFactory


class GetLabStatistics:
    def __init__(self, uow: UowFactory, clock: Clock, days: int = 30, top: int = 5) -> None:
        self.uow, self.clock, self.days, self.top = uow, clock, days, top

    def __call__(self) -> LabStatistics:
        today = self.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
        since = today - timedelta(days=self.days - 1)
        with self.uow() as uow:
            statistics = uow.statistics.lab_statistics(since, self.top)
        days = [(since + timedelta(days=n)).date().isoformat() for n in range(self.days)]
        return replace(statistics, days=days)
