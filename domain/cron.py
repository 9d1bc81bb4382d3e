"""Cron expressions, evaluated in a time zone, for plans that run on a schedule.

The subset understood: five fields (minute, hour, day of month, month, day of week), each a
`*`, a number, a range `a-b`, a list `a,b,c`, and a step `*/n` or `a-b/n`; months may be
named (`jan`-`dec`) and days of the week too (`sun`-`sat`, 0 and 7 both Sunday). As in Vixie
cron, when both day of month and day of week are restricted, a day matching either runs.
No `@daily` shorthands, no `L`, `W` or `#`, no seconds.

Slots are wall-clock times in the expression's zone. Two rules make daylight saving changes
unsurprising:

- a slot in a gap (02:30 on the night the clocks go forward) runs at the first valid minute
  after the gap (03:00), once, however many slots fell into the gap;
- a slot in a repeated hour (02:30 on the night the clocks go back) runs once, at its first
  occurrence.

`latest_slot(after, until)` answers the worker's question: which slot, if any, fell due
since it last looked. However many slots were missed, the answer is one slot (the newest), so
a worker that was down runs a missed schedule once, not once per missed slot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidValue

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# name, lowest, highest, names (their position + lowest is their value)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
# a search never looks further ahead than this: every valid expression has a slot within
# eight years (29 February on a given weekday repeats within 28 years, but a day-of-month
# and weekday together match with OR, so eight years covers every leap-day expression)
_HORIZON = timedelta(days=8 * 366)


def zone(name: str | None) -> ZoneInfo:
    """The IANA time zone of that name (default UTC)."""
    name = (name or "UTC").strip() or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue("timezone", f"unknown time zone {name!r} (use an IANA name)") from None


def _number(text: str, low: int, names: tuple[str, ...], field: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + low
    if not text.isdigit():
        raise InvalidValue("cron", f"{field}: {text!r} is not a number")
    return int(text)


def _parse_field(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> frozenset:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise InvalidValue("cron", f"{field}: empty list item")
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise InvalidValue("cron", f"{field}: step {step_text!r} must be a number > 0")
            step = int(step_text)
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, _, last = span.partition("-")
            start, end = _number(first, low, names, field), _number(last, low, names, field)
        else:
            start = _number(span, low, names, field)
            end = high if step_text else start
        for value in (start, end):
            if not low <= value <= high:
                raise InvalidValue("cron", f"{field}: {value} is outside {low}-{high}")
        if start > end:
            raise InvalidValue("cron", f"{field}: range {span} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronExpression:
    text: str
    minutes: frozenset
    hours: frozenset
    days: frozenset
    months: frozenset
    weekdays: frozenset  # 0 = Sunday
    any_day: bool  # day of month is `*`
    any_weekday: bool  # day of week is `*`

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        if not isinstance(text, str):
            raise InvalidValue("cron", "must be a text of five fields")
        parts = text.split()
        if len(parts) != 5:
            raise InvalidValue(
                "cron", "needs five fields: minute hour day-of-month month day-of-week"
            )
        parsed = [
            _parse_field(part, name, low, high, names)
            for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
        ]
        weekdays = frozenset(d % 7 for d in parsed[4])
        return cls(
            text=" ".join(parts),
            minutes=parsed[0],
            hours=parsed[1],
            days=parsed[2],
            months=parsed[3],
            weekdays=weekdays,
            any_day=parts[2].startswith("*"),
            any_weekday=parts[4].startswith("*"),
        )

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def _next_wall_time(self, wall: datetime) -> datetime | None:
        """The first matching wall-clock minute after `wall` (naive), or None."""
        moment = wall.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = wall + _HORIZON
        while moment <= end:
            if not self._day_matches(moment):
                moment = (moment + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if moment.hour not in self.hours:
                later = [h for h in self.hours if h > moment.hour]
                if not later:
                    moment = (moment + timedelta(days=1)).replace(hour=0, minute=0)
                else:
                    moment = moment.replace(hour=min(later), minute=0)
                continue
            later = [m for m in self.minutes if m >= moment.minute]
            if not later:
                moment = (moment + timedelta(hours=1)).replace(minute=0)
                continue
            return moment.replace(minute=min(later))
        return None

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """The first slot strictly after the instant `after` (aware), in UTC; None when the
        expression never matches (e.g. 30 February)."""
        wall = after.astimezone(tz).replace(tzinfo=None)
        while True:
            found = self._next_wall_time(wall)
            if found is None:
                return None
            instant = _instant_of(found, tz)
            if instant > after:
                return instant
            # a repeated hour's second pass: its slots already ran at their first occurrence
            wall = found

    def latest_slot(self, after: datetime, until: datetime, tz: ZoneInfo) -> datetime | None:
        """The newest slot in (after, until], or None: what is due once, however many slots
        the interval holds."""
        first = self.next_after(after, tz)
        if first is None or first > until:
            return None
        # start close to `until` when slots are frequent, so a long outage costs little
        recent = self.next_after(max(first, until - timedelta(days=1)) - timedelta(minutes=1), tz)
        latest = first if recent is None or recent > until else recent
        while True:
            following = self.next_after(latest, tz)
            if following is None or following > until:
                return latest
            latest = following


def _instant_of(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time: its first occurrence in a repeated hour, and the
    end of the gap for a time the clocks skipped."""
    while not _exists(wall, tz):
        wall += timedelta(minutes=1)
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _exists(wall: datetime, tz: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=tz, fold=0)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
