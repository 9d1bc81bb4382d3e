"""Device utilisation per day for the dashboard: the share of the devices' time in each status
(domain.utilisation has the rule), over the last `days` UTC days up to now."""

from __future__ import annotations

from datetime import timedelta

from application.ports import Clock
from application.ports import UnitOfWorkFactory as UowFactory
from domain.errors import InvalidValue
from domain.utilisation import DayUse, per_day

MAX_DAYS = 92


class ShowUtilisation:
    def __init__(self, uow: UowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(self, days: int = 14) -> list[DayUse]:
        if not 1 <= days <= MAX_DAYS:
            raise InvalidValue("days", f"must be between 1 and {MAX_DAYS}")
        now = self.clock.now()
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=days - 1)
        with self.uow(read_only=True) as uow:
            timelines = uow.utilisation.timelines(start, now)
        return per_day(timelines, start, now)
