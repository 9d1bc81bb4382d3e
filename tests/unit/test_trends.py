"""A test case's trend through the use case on the in-memory store (the SQL store is held to
the same answers in tests/integration/test_sql_trends.py), and the rules in domain.trends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.errors import NotFound
from application.use_cases.trends import ShowTrend, TrendRequest
from domain.errors import InvalidValue
from domain.trends import TrendPoint, TrendResult, firmware_changes
from tests.support.firmware_history import FirmwareHistory


@pytest.fixture
def history(lab):
    return FirmwareHistory(lab)


def test_values_over_time_with_the_criterion_and_firmware_changes(lab, history):
    first = history.run("1.0.0", 230.0)
    history.run("1.0.0", 235.0, device=history.other)
    flashed = history.run("1.1.0", 245.0)
    history.run("1.1.0", None)  # no voltage measured: no point, an inconclusive result
    trend = ShowTrend(lab.new_uow)(TrendRequest(history.voltage.id))
    assert (trend.metric, trend.condition, trend.threshold) == ("voltage", "<=", 240.0)
    assert trend.metrics == ["voltage"]
    assert [(p.value, p.result.firmware, p.result.device_name) for p in trend.points] == [
        (230.0, "1.0.0", "meter-1"),
        (235.0, "1.0.0", "em24-1"),
        (245.0, "1.1.0", "meter-1"),
    ]
    oldest, other, newest = (p.result for p in trend.points)
    assert oldest.run_id == first and oldest.verdict == "pass"
    assert newest.verdict == "fail" and other.model == "EM-24"
    (change,) = trend.firmware_changes
    assert (change.device_id, change.run_id) == (history.meter.id, flashed)
    assert (change.previous, change.firmware) == ("1.0.0", "1.1.0")
    (day,) = trend.pass_rate
    assert (day.passed, day.failed, day.inconclusive) == (2, 1, 1)
    assert trend.results == 4 and trend.truncated is False


def test_the_newest_window_is_cut_at_the_limit_and_narrowed(lab, history):
    for voltage in (230.0, 231.0, 232.0):
        history.run("1.0.0", voltage)
    history.run("1.0.0", 233.0, device=history.other)
    show = ShowTrend(lab.new_uow)
    cut = show(TrendRequest(history.voltage.id, limit=2))
    assert [p.value for p in cut.points] == [232.0, 233.0] and cut.truncated is True
    only = show(TrendRequest(history.voltage.id, model="EM-340"))
    assert [p.value for p in only.points] == [230.0, 231.0, 232.0]
    device = show(TrendRequest(history.voltage.id, device_id=history.other.id))
    assert [p.value for p in device.points] == [233.0]


def test_a_window_of_finish_times(lab, history):
    history.run("1.0.0", 230.0)
    since = lab.clock.now()
    history.run("1.0.0", 231.0)
    until = lab.clock.now() - timedelta(seconds=1)  # before the next run finishes
    history.run("1.0.0", 232.0)
    trend = ShowTrend(lab.new_uow)(
        TrendRequest(history.voltage.id, finished_from=since, finished_to=until)
    )
    assert [p.value for p in trend.points] == [231.0]


def test_pass_rate_is_per_utc_day(lab, history):
    history.run("1.0.0", 230.0)
    lab.clock.advance(86400)
    history.run("1.0.0", 250.0)
    history.run("1.0.0", 230.0)
    rates = ShowTrend(lab.new_uow)(TrendRequest(history.voltage.id)).pass_rate
    assert [(r.passed, r.failed) for r in rates] == [(1, 0), (1, 1)]
    assert rates[1].day - rates[0].day == timedelta(days=1)


def test_another_metric_and_one_never_measured(lab, history):
    history.run("1.0.0", 230.0, current=10.0)
    show = ShowTrend(lab.new_uow)
    assert show(TrendRequest(history.current.id)).metric == "current"
    missing = show(TrendRequest(history.voltage.id, metric="frequency"))
    assert missing.points == [] and missing.threshold is None and missing.condition is None


def test_unknown_case_and_bad_bounds(lab, history):
    show = ShowTrend(lab.new_uow)
    with pytest.raises(NotFound):
        show(TrendRequest("nope"))
    with pytest.raises(InvalidValue):
        show(TrendRequest(history.voltage.id, limit=0))
    with pytest.raises(InvalidValue):
        show(TrendRequest(history.voltage.id, limit=5001))
    now = lab.clock.now()
    with pytest.raises(InvalidValue):
        show(TrendRequest(history.voltage.id, finished_from=now, finished_to=now - timedelta(1)))


def test_firmware_changes_are_per_device():
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def point(minute: int, device: str, firmware: str) -> TrendPoint:
        at_minute = at + timedelta(minutes=minute)
        return TrendPoint(
            TrendResult(f"r{minute}", at_minute, device, device, "", firmware, "pass", ()), 1.0
        )

    series = [
        point(0, "a", "1"),
        point(1, "b", "2"),
        point(2, "a", "1"),
        point(3, "a", "2"),
        point(4, "b", "2"),
        point(5, "a", "1"),
    ]
    assert [(c.device_id, c.run_id, c.previous, c.firmware) for c in firmware_changes(series)] == [
        ("a", "r3", "1", "2"),
        ("a", "r5", "2", "1"),
    ]
