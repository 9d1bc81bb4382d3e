"""Device utilisation per day: the share of the lab's device time spent in each status, from
the devices' status histories. Pure: the store hands over each device's timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from domain.devices import DeviceStatus


@dataclass(frozen=True)
class Timeline:
    """One device's status from `since` on: `initial` until the first change, then each
    change's new status (changes oldest first, all at or after `since`)."""

    device_id: str
    since: datetime
    initial: DeviceStatus
    changes: tuple[tuple[datetime, DeviceStatus], ...] = ()


@dataclass(frozen=True)
class DayUse:
    day: date
    seconds: dict[DeviceStatus, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def share(self, status: DeviceStatus) -> float | None:
        """The share of the day's device time in `status` (None: no device time that day)."""
        total = self.total
        return self.seconds.get(status, 0.0) / total if total else None


def _midnight(day: date, like: datetime) -> datetime:
    return datetime.combine(day, time(), tzinfo=like.tzinfo)


def per_day(timelines: list[Timeline], start: datetime, end: datetime) -> list[DayUse]:
    """Device seconds per status for each (UTC) day from `start`'s to the one before `end`,
    counting each device from the later of `start` and its `since`, up to `end`."""
    days: dict[date, dict[DeviceStatus, float]] = {}
    day = start.date()
    while _midnight(day, start) < end:
        days[day] = {}
        day += timedelta(days=1)
    for timeline in timelines:
        at, status = max(start, timeline.since), timeline.initial
        for changed_at, new_status in (*timeline.changes, (end, status)):
            _add(days, max(at, start), min(changed_at, end), status)
            at, status = max(at, changed_at), new_status
    return [DayUse(day, seconds) for day, seconds in sorted(days.items())]


def _add(days: dict[date, dict[DeviceStatus, float]], a: datetime, b: datetime, s: DeviceStatus):
    while a < b:
        next_midnight = _midnight(a.date() + timedelta(days=1), a)
        cut = min(b, next_midnight)
        if a.date() in days:
            seconds = days[a.date()]
            seconds[s] = seconds.get(s, 0.0) + (cut - a).total_seconds()
        a = cut
