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
        now = self.clock.now()
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        since = today - timedelta(days=self.days - 1)
        with self.uow() as uow:
            statistics = uow.statistics.lab_statistics(since, self.top)
        days = [(since + timedelta(days=n)).date().isoformat() for n in range(self.days)]
        oldest = statistics.oldest_waiting_since
        longest = None if oldest is None else max(0.0, (now - oldest).total_seconds())
        return replace(statistics, days=days, longest_wait_s=longest)
