"""Migration 0019 on a database with rows in it: the results stored before are summed up per
UTC day of their run's creation, so that a window of whole days reads the same as one whose
first day is read from the results; health-check runs stay out; a run created before midnight
and finished after the next day's runs is the newest; a run completed afterwards adds to the
day it was created on. Also down again and up over the same rows."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import ResultScope
from tests.integration.conftest import Lab, at_revision
from tests.integration.test_migration_0013_regressions import CASE, ENVIRONMENT
from tests.support.firmware_history import FirmwareHistory

MIDNIGHT = datetime(2026, 12, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
# run n: purpose, verdict, voltage (None: not measured), created, finished
HISTORY = [
    ("normal", "pass", 230.0, MIDNIGHT + 8 * HOUR, MIDNIGHT + 9 * HOUR),
    ("normal", "pass", 232.0, MIDNIGHT + 10 * HOUR, MIDNIGHT + 11 * HOUR),
    ("health_check", "fail", 300.0, MIDNIGHT + 12 * HOUR, MIDNIGHT + 13 * HOUR),
    # created before midnight, finished after the next day's first run: the newest
    ("normal", "fail", 245.0, MIDNIGHT + 23 * HOUR, MIDNIGHT + 27 * HOUR),
    ("normal", "pass", 231.0, MIDNIGHT + 24.5 * HOUR, MIDNIGHT + 25 * HOUR),
    ("normal", "inconclusive", None, MIDNIGHT + 48 * HOUR, MIDNIGHT + 49 * HOUR),
]


@pytest.fixture
def url_at_0018(empty_database: str) -> str:
    return at_revision(empty_database, "0018")


def _fill(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    rows: dict[str, list[dict]] = {n: [] for n in ("runs", "cases", "devices", "results")}
    for n, (purpose, verdict, voltage, created, finished) in enumerate(HISTORY):
        run_id = f"run-{n}"
        rows["runs"].append(
            {
                "id": run_id,
                "status": "completed",
                "verdict": verdict,
                "purpose": purpose,
                "environment_id": "e1",
                "environment": ENVIRONMENT,
                "parameters": {},
                "started_by": "engineer@lab",
                "created_at": created,
                "started_at": created,
                "finished_at": finished,
                "deadline": finished + HOUR,
                "failure_reason": "",
                "progress": 1.0,
                "progress_message": "",
                "runner": "",
                "version": 3,
            }
        )
        rows["cases"].append(
            {"run_id": run_id, "position": 0, "test_case_id": "c1", "version": 1, "snapshot": CASE}
        )
        device = {"id": "d1", "name": "meter", "model": "EM-340", "firmware_version": "5.0.0"}
        rows["devices"].append(
            {
                "run_id": run_id,
                "position": 0,
                "device_id": "d1",
                "firmware_version": "5.0.0",
                "snapshot": {**device, "serial": "1", "labels": {}},
                "run_created_at": created,
            }
        )
        criterion = CASE["criteria"][0]
        passed = None if voltage is None else voltage <= 240.0
        rows["results"].append(
            {
                "run_id": run_id,
                "test_case_id": "c1",
                "device_id": "d1",
                "verdict": verdict,
                "measurements": [{**criterion, "value": voltage, "passed": passed}],
                "message": "",
            }
        )
    try:
        with engine.begin() as connection:
            for name, table in (
                ("runs", "test_runs"),
                ("cases", "test_run_cases"),
                ("devices", "test_run_devices"),
                ("results", "test_run_results"),
            ):
                connection.execute(t[table].insert(), rows[name])
    finally:
        engine.dispose()


def test_results_from_before_are_summed_up_per_day(url_at_0018: str) -> None:
    _fill(url_at_0018)
    upgrade_schema(url_at_0018)  # head: the repositories read the columns of later revisions
    engine = make_engine(url_at_0018)
    uow = functools.partial(SqlAlchemyUnitOfWork, make_session_factory(engine))
    try:
        with engine.connect() as connection:
            days = connection.execute(sa.text("SELECT count(*) FROM result_day_summaries"))
            assert days.scalar_one() == 3  # the health check's fail counts nowhere
        with uow() as work:
            whole_days = ResultScope(firmware="5.0.0", created_from=MIDNIGHT)
            first_day_read = ResultScope(firmware="5.0.0", created_from=MIDNIGHT + HOUR)
            (side,) = work.results.summaries(whole_days)
            assert work.results.summaries(first_day_read) == [side]
            assert (side.passed, side.failed, side.inconclusive) == (3, 1, 1)
            assert (side.recent_passed, side.recent_failed) == (3, 1)
            assert (side.newest.run_id, side.oldest_fail.run_id) == ("run-5", "run-3")
            voltage = side.metrics["voltage <="]
            assert (voltage.count, voltage.mean) == (4, pytest.approx(234.5))
            # the first day whole, the second read: the run created before midnight is newest
            two_days = ResultScope(
                firmware="5.0.0", created_from=MIDNIGHT, created_to=MIDNIGHT + 47 * HOUR
            )
            (two,) = work.results.summaries(two_days)
            assert (two.newest.run_id, two.results) == ("run-3", 4)
            # the second day alone: the run created on the first is not in it
            (second,) = work.results.summaries(
                ResultScope(firmware="5.0.0", created_from=MIDNIGHT + 24 * HOUR)
            )
            assert (second.passed, second.failed, second.newest.run_id) == (1, 0, "run-5")

        # a run completed by the code from now on adds to the day it was created on
        clock = SettableClock(MIDNIGHT + 72 * HOUR + timedelta(minutes=30))
        history = FirmwareHistory(Lab(uow, clock, SequentialIds(), engine))
        history.run("5.0.0", 250.0)
        history.run("5.0.0", 229.0)
        with uow() as work:
            added = work.results.summaries(
                ResultScope(
                    firmware="5.0.0",
                    created_from=MIDNIGHT + 72 * HOUR,
                    created_to=MIDNIGHT + 96 * HOUR,
                    test_case_id=history.voltage.id,
                )
            )
            assert [(s.passed, s.failed, s.recent_failed) for s in added] == [(1, 1, 1)]
            assert added[0].metrics["voltage <="].total == pytest.approx(479.0)
    finally:
        engine.dispose()


def test_down_again_drops_the_day_summaries(url_at_0018: str) -> None:
    _fill(url_at_0018)
    upgrade_schema(url_at_0018, "0019")
    downgrade_schema(url_at_0018, "0018")
    engine = make_engine(url_at_0018)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        assert not {"result_day_summaries", "result_day_metric_summaries"} & tables
    finally:
        engine.dispose()
    upgrade_schema(url_at_0018, "0019")  # and up again, over the same rows


@pytest.mark.postgres
def test_the_purpose_of_runs_has_statistics_after_it_on_postgres(fresh_postgres_url: str) -> None:
    """0018 added test_runs.purpose without touching a row, so no autovacuum analysed it and
    the planner misjudged `purpose = 'normal'` (a window's results read by hashing every
    completed run); 0019 analyses the table."""
    upgrade_schema(fresh_postgres_url, "0018")
    _fill(fresh_postgres_url)
    upgrade_schema(fresh_postgres_url, "0019")
    engine = make_engine(fresh_postgres_url)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stats "
                    "WHERE tablename = 'test_runs' AND attname = 'purpose'"
                )
            )
            assert found.scalar_one() == 1
    finally:
        engine.dispose()
