"""Device utilisation per day: the rule in domain.utilisation and the use case on the
in-memory store (tests/integration/test_sql_utilisation.py holds SQL to the same answers)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from application.use_cases.utilisation import ShowUtilisation
from domain.devices import DeviceStatus as S
from domain.errors import InvalidValue
from domain.utilisation import Timeline, per_day
from tests.support.device_days import HOUR, script


def test_each_day_shares_the_devices_time_by_status(lab):
    script(lab)
    first, second = ShowUtilisation(lab.new_uow, lab.clock)(days=2)
    assert first.day == date(2026, 3, 1) and second.day == date(2026, 3, 2)
    # counted from the devices' creation at 08:00, up to now (04:00 on day two)
    assert first.seconds == {S.AVAILABLE: 17 * HOUR, S.IN_TEST: 2 * HOUR, S.OFFLINE: 13 * HOUR}
    assert second.seconds == {S.AVAILABLE: 4 * HOUR, S.OFFLINE: 2 * HOUR, S.MAINTENANCE: 2 * HOUR}
    assert first.share(S.IN_TEST) == pytest.approx(2 / 32)
    assert second.share(S.MAINTENANCE) == 0.25 and second.share(S.HELD) == 0.0


def test_days_before_any_device_have_no_shares(lab):
    script(lab)
    days = ShowUtilisation(lab.new_uow, lab.clock)(days=4)
    assert [d.day.day for d in days] == [27, 28, 1, 2]  # February 2026 has 28 days
    assert days[0].total == 0 and days[0].share(S.AVAILABLE) is None


def test_the_number_of_days_is_bounded(lab):
    show = ShowUtilisation(lab.new_uow, lab.clock)
    for days in (0, 93):
        with pytest.raises(InvalidValue):
            show(days=days)


def test_a_status_from_before_the_window_carries_into_it():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=1, hours=6)
    timelines = [
        Timeline("a", start, S.OFFLINE, ((start + timedelta(hours=20), S.AVAILABLE),)),
        Timeline("b", start + timedelta(hours=12), S.HELD),  # created at noon
    ]
    first, second = per_day(timelines, start, end)
    assert first.seconds == {S.OFFLINE: 20 * HOUR, S.AVAILABLE: 4 * HOUR, S.HELD: 12 * HOUR}
    assert second.seconds == {S.AVAILABLE: 6 * HOUR, S.HELD: 6 * HOUR}
