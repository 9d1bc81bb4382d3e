"""Cron evaluation: the subset, time zones, both daylight saving changes, and missed slots
(however many slots a worker missed, one is due)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.cron import CronExpression, zone
from domain.errors import InvalidValue

BERLIN = zone("Europe/Berlin")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def slots(text: str, start: datetime, count: int, tz=UTC) -> list[datetime]:
    found, moment = [], start
    expression = CronExpression.parse(text)
    for _ in range(count):
        moment = expression.next_after(moment, tz)
        found.append(moment)
    return found


def test_fields_ranges_lists_steps_and_names() -> None:
    assert slots("*/20 9-10 * * *", at(2026, 3, 2, 9, 5), 4) == [
        at(2026, 3, 2, 9, 20),
        at(2026, 3, 2, 9, 40),
        at(2026, 3, 2, 10, 0),
        at(2026, 3, 2, 10, 20),
    ]
    # Monday to Friday at 02:00: Friday 6 March 2026 is followed by Monday 9 March
    assert slots("0 2 * * mon-fri", at(2026, 3, 6, 3), 1) == [at(2026, 3, 9, 2)]
    assert slots("0 0 1 jan,jul *", at(2026, 2, 1), 2) == [at(2026, 7, 1), at(2027, 1, 1)]
    assert slots("0 12 * * 7", at(2026, 3, 2), 1) == [at(2026, 3, 8, 12)]  # 7 is Sunday too


def test_day_of_month_or_day_of_week_when_both_are_given() -> None:
    # the 13th, or any Friday (Vixie cron): Friday 6 March comes before the 13th
    assert slots("0 0 13 * fri", at(2026, 3, 1), 2) == [at(2026, 3, 6), at(2026, 3, 13)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "*/0 * * * *",
        "5-1 * * * *",
        "* * * foo *",
        "1,,2 * * * *",
    ],
)
def test_malformed_expressions_are_refused_with_the_field(text: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        CronExpression.parse(text)
    assert refused.value.field == "cron"


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidValue, match="time zone"):
        zone("Mars/Olympus")


def test_a_slot_is_wall_clock_time_in_its_zone() -> None:
    # 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer
    expression = CronExpression.parse("0 2 * * *")
    assert expression.next_after(at(2026, 1, 10), BERLIN) == at(2026, 1, 10, 1)
    assert expression.next_after(at(2026, 7, 9, 12), BERLIN) == at(2026, 7, 10, 0)


def test_a_slot_in_the_spring_gap_runs_at_the_first_minute_after_it_once() -> None:
    # 29 March 2026: Berlin's clocks go from 02:00 to 03:00 (01:00 UTC)
    expression = CronExpression.parse("30 2 * * *")
    assert expression.next_after(at(2026, 3, 28, 12), BERLIN) == at(2026, 3, 29, 1)
    assert expression.next_after(at(2026, 3, 29, 1), BERLIN) == at(2026, 3, 30, 0, 30)
    # every quarter hour: the four slots of the gap and 03:00 itself are one slot at 03:00
    quarter = slots("*/15 * * * *", at(2026, 3, 29, 0, 40), 3, BERLIN)
    assert quarter == [at(2026, 3, 29, 0, 45), at(2026, 3, 29, 1), at(2026, 3, 29, 1, 15)]


def test_a_slot_in_the_repeated_autumn_hour_runs_once() -> None:
    # 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens at 00:30 and 01:30 UTC
    expression = CronExpression.parse("30 2 * * *")
    first = expression.next_after(at(2026, 10, 24, 12), BERLIN)
    assert first == at(2026, 10, 25, 0, 30)
    assert expression.next_after(first, BERLIN) == at(2026, 10, 26, 1, 30)
    # looking from inside the second pass of the hour finds nothing in it again
    assert expression.next_after(at(2026, 10, 25, 1, 10), BERLIN) == at(2026, 10, 26, 1, 30)
    assert expression.latest_slot(first, at(2026, 10, 25, 2, 0), BERLIN) is None


def test_several_missed_slots_make_one_due_slot_the_newest() -> None:
    expression = CronExpression.parse("0 * * * *")  # hourly
    # the worker last looked at 08:10 and was down until 13:25: five slots, one is due
    due = expression.latest_slot(at(2026, 3, 2, 8, 10), at(2026, 3, 2, 13, 25), UTC)
    assert due == at(2026, 3, 2, 13)
    # looking again right after finds nothing more
    assert expression.latest_slot(at(2026, 3, 2, 13, 25), at(2026, 3, 2, 13, 59), UTC) is None
    # a daily slot missed for a month is one slot too, and a monthly one found far back
    daily = CronExpression.parse("0 2 * * *")
    assert daily.latest_slot(at(2026, 1, 1), at(2026, 2, 1, 1), UTC) == at(2026, 1, 31, 2)
    monthly = CronExpression.parse("0 0 1 * *")
    assert monthly.latest_slot(at(2026, 1, 2), at(2026, 3, 20), UTC) == at(2026, 3, 1)


def test_an_expression_that_never_matches_has_no_slot() -> None:
    never = CronExpression.parse("0 0 30 feb *")
    assert never.next_after(at(2026, 1, 1), UTC) is None
    assert never.latest_slot(at(2026, 1, 1), at(2036, 1, 1), UTC) is None


def test_a_minutely_schedule_missed_for_weeks_is_found_quickly() -> None:
    every_minute = CronExpression.parse("* * * * *")
    now = at(2026, 3, 1)
    assert every_minute.latest_slot(now - timedelta(days=30), now, UTC) == now


EXPRESSIONS = ["*/7 * * * *", "30 2 * * *", "0 0 29 2 *", "15 1-3 * * sun", "0 */5 1,15 * mon"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]


@settings(max_examples=100)
@given(
    text=st.sampled_from(EXPRESSIONS),
    zone_name=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)),
    span_minutes=st.integers(min_value=0, max_value=3 * 24 * 60),
)
def test_the_due_slot_is_the_newest_in_the_interval(text, zone_name, start, span_minutes) -> None:
    """Whatever the interval (across DST changes too): the due slot lies in it, and the next
    slot after it lies beyond it; with no due slot, the first slot after the start does."""
    expression, tz = CronExpression.parse(text), zone(zone_name)
    after = start.replace(tzinfo=UTC)
    until = after + timedelta(minutes=span_minutes)
    due = expression.latest_slot(after, until, tz)
    if due is None:
        first = expression.next_after(after, tz)
        assert first is None or first > until
        return
    assert after < due <= until
    following = expression.next_after(due, tz)
    assert following is None or following > until
    # a slot is a matching wall-clock minute, or the end of a gap that swallowed one
    wall = due.astimezone(tz)
    shifted = (wall - timedelta(minutes=1)).astimezone(tz)
    assert wall.minute in expression.minutes or wall.utcoffset() != shifted.utcoffset()
