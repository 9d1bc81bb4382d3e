"""The SQL result summaries (adapters/persistence/repositories/results.py) against the
in-memory twin: the same history on both, the same comparisons, regressions, flaky cases and
firmware versions, on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime, time, timedelta

import pytest

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.ports import ResultScope
from application.use_cases.comparison import (
    CompareRequest,
    CompareResults,
    ListFirmwareVersions,
    ListRegressions,
    RegressionsRequest,
)
from domain.comparison import FLAKY_WINDOW
from domain.test_runs import Observation, ResultReport
from tests.integration.conftest import T0
from tests.support.firmware_history import FirmwareHistory

FIRMWARES = ["1.0.0", "1.1.0", "1.2.0-rc.1", "1.2.0", "nightly-7"]


def build(lab, seed: int, hours_apart: tuple[float, ...] = (0,)) -> FirmwareHistory:
    """A random but repeatable history: 40 runs over five firmware versions and three
    devices, some with a second case, voltages around the 240 V limit; between runs, five
    minutes and one of `hours_apart` more."""
    rnd = random.Random(seed)
    history = FirmwareHistory(lab)
    for _ in range(40):
        history.run(
            rnd.choice(FIRMWARES),
            voltage=rnd.choice([None, round(rnd.uniform(225, 250), 3)]),
            device=rnd.choice([history.meter, history.spare, history.other]),
            current=rnd.choice([None, round(rnd.uniform(10, 18), 3)]),
        )
        lab.clock.advance(rnd.choice(hours_apart) * 3600)
    return history


@pytest.fixture
def twins(lab, lab_factory):
    memory = lab_factory(
        functools.partial(InMemoryUnitOfWork, InMemoryStore()), SettableClock(T0), SequentialIds()
    )
    return lab, memory


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_and_memory_compare_alike(twins, seed):
    sql, memory = twins
    histories = [build(sql, seed), build(memory, seed)]
    assert histories[0].voltage.id == histories[1].voltage.id  # the same ids on both
    requests = [
        CompareRequest("1.0.0", "1.1.0"),
        CompareRequest("1.1.0", "1.2.0"),
        CompareRequest("1.0.0", "1.2.0", model="EM-340"),
        CompareRequest("1.0.0", "nightly-7", test_case_id=histories[0].voltage.id),
        CompareRequest("1.0.0", "1.1.0", created_from=T0, created_to=sql.clock.now()),
    ]
    for request in requests:
        assert_compared_alike(sql, memory, request)


def assert_compared_alike(sql, memory, request: CompareRequest) -> None:
    on_sql = CompareResults(sql.new_uow)(request)
    in_memory = CompareResults(memory.new_uow)(request)
    assert on_sql.rows, request
    assert len(on_sql.rows) == len(in_memory.rows), request
    for a, b in zip(on_sql.rows, in_memory.rows, strict=True):
        assert (a.key, a.change, a.flaky) == (b.key, b.change, b.flaky)
        assert a.base == b.base or _close(a.base, b.base)
        assert a.target == b.target or _close(a.target, b.target)
        for m, n in zip(a.metrics, b.metrics, strict=True):
            assert (m.metric, m.condition, m.direction, m.beyond_spread) == (
                n.metric,
                n.condition,
                n.direction,
                n.beyond_spread,
            )
            assert m.difference == pytest.approx(n.difference)


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_and_memory_compare_alike_in_windows_cutting_through_days(twins, seed):
    """The runs spread over about ten days: a window reads whole days from the day sums and
    its first and last day from the results; every kind of edge gives what the in-memory
    twin computes from the results."""
    sql, memory = twins
    for lab in (sql, memory):
        build(lab, seed, hours_apart=(0.5, 4, 9))
    midnight = datetime.combine(T0.date(), time(), tzinfo=UTC)
    day = timedelta(days=1)
    windows = [
        (T0 + day + timedelta(hours=3), T0 + 5 * day + timedelta(hours=2)),  # mid-day, both
        (midnight + 2 * day, midnight + 6 * day),  # `to` at midnight: one instant of day 7
        (midnight + 2 * day, midnight + 6 * day - timedelta(microseconds=1)),  # whole days
        (None, T0 + 4 * day),
        (T0 + 3 * day, None),
        (midnight + day + timedelta(hours=1), midnight + day + timedelta(hours=20)),  # in one day
    ]
    for created_from, created_to in windows:
        for base, target in (("1.0.0", "1.1.0"), ("1.1.0", "1.2.0"), ("1.2.0", "nightly-7")):
            request = CompareRequest(base, target, created_from=created_from, created_to=created_to)
            assert_compared_alike(sql, memory, request)


def test_a_run_finishing_after_the_next_days_runs_is_the_newest_of_a_window(lab):
    """Days are the runs' creation days, the order is their finish: a run created just before
    midnight and finished after runs created the next day is still the newest result."""
    history = FirmwareHistory(lab)
    history.flash(history.meter, "2.0.0")
    history.flash(history.spare, "2.0.0")
    midnight = datetime.combine(T0.date(), time(), tzinfo=UTC) + timedelta(days=1)
    lab.clock.advance((midnight - timedelta(minutes=10) - lab.clock.now()).total_seconds())
    late = lab.start([history.spare], [history.voltage], history.environment)
    lab.clock.advance(15 * 60)
    for _ in range(FLAKY_WINDOW):
        history.run("2.0.0", 230.0)
    report = ResultReport(history.voltage.id, history.spare.id, (Observation("voltage", 250.0),))
    lab.record_result(late.id, [report])
    day = timedelta(days=1)
    window = ResultScope(firmware="2.0.0", created_from=midnight - day, created_to=midnight + day)
    with lab.new_uow() as uow:
        (side,) = uow.results.summaries(window)
        (kept,) = uow.results.summaries(ResultScope(firmware="2.0.0"))
    assert side.newest.run_id == late.id
    assert (side.recent_failed, side.recent_passed) == (1, FLAKY_WINDOW - 1)
    assert side == kept


def _close(a, b) -> bool:
    """Equal but for the float sums (the database adds in another order)."""
    assert (a.key, a.passed, a.failed, a.inconclusive, a.newest) == (
        b.key,
        b.passed,
        b.failed,
        b.inconclusive,
        b.newest,
    )
    assert (a.recent_passed, a.recent_failed, a.oldest_fail, a.newest_pass) == (
        b.recent_passed,
        b.recent_failed,
        b.oldest_fail,
        b.newest_pass,
    )
    assert a.metrics.keys() == b.metrics.keys()
    for name, sample in a.metrics.items():
        other = b.metrics[name]
        assert (sample.count, sample.condition, sample.threshold, sample.unit) == (
            other.count,
            other.condition,
            other.threshold,
            other.unit,
        )
        assert sample.total == pytest.approx(other.total)
        assert sample.total_squares == pytest.approx(other.total_squares)
    return True


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_and_memory_track_the_same_regressions(twins, seed):
    sql, memory = twins
    build(sql, seed)
    build(memory, seed)
    for request in (RegressionsRequest(), RegressionsRequest(open=True, model="EM-24")):
        on_sql = ListRegressions(sql.new_uow)(request)
        in_memory = ListRegressions(memory.new_uow)(request)
        assert on_sql.regressions == in_memory.regressions
        assert [(s.key, s.firmware) for s in on_sql.flaky] == [
            (s.key, s.firmware) for s in in_memory.flaky
        ]
    assert ListFirmwareVersions(sql.new_uow)() == ListFirmwareVersions(memory.new_uow)()
    versions = [f.version for f in ListFirmwareVersions(sql.new_uow)()]
    assert [v for v in versions if not v.startswith("nightly")] == [
        "1.0.0",
        "1.1.0",
        "1.2.0-rc.1",
        "1.2.0",
    ]


def test_a_regression_found_on_sql(lab):
    history = FirmwareHistory(lab)
    history.run("1.0.0", 230.0)
    failed = history.run("1.1.0", 250.0)
    (regression,) = ListRegressions(lab.new_uow)(RegressionsRequest()).regressions
    assert regression.open and regression.first_failing.run.run_id == failed
    assert regression.first_failing.run.at.tzinfo is not None


def test_runs_completing_at_once_are_all_counted(lab):
    """Eight runs of one key on eight meters complete in eight threads: the kept sums count
    every one (the upsert adds in the database, not from a value read before)."""
    from domain.test_runs import Observation, ResultReport
    from tests.support.concurrency import fire_together

    history = FirmwareHistory(lab)
    meters = [
        lab.add_device(f"meter-x{n}", model="EM-340", firmware_version="3.0.0") for n in range(8)
    ]
    runs = [lab.start([m], [history.voltage], history.environment) for m in meters]

    def complete(run, meter, value):
        report = ResultReport(history.voltage.id, meter.id, (Observation("voltage", value),))
        return lambda: lab.record_result(run.id, [report])

    values = [230.0 + n for n in range(8)]
    outcomes = fire_together(
        [complete(r, m, v) for r, m, v in zip(runs, meters, values, strict=True)]
    )
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    with lab.new_uow() as uow:
        (kept,) = uow.results.summaries(ResultScope(firmware="3.0.0"))
    assert (kept.passed, kept.recent_passed) == (8, 8)
    sample = kept.metrics["voltage <="]
    assert (sample.count, sample.total) == (8, sum(values))
