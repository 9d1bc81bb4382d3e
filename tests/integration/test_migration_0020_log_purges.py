"""Migration 0020 on a database with logs in it: the logs stored before are not purged (their
totals read back through the repositories with no `purged_at`), a purge at head takes the
finished run's lines and leaves the running run's; down again, the column and its index go,
and up again over the same rows."""

from __future__ import annotations

import functools
from datetime import timedelta

import sqlalchemy as sa

from adapters.clocks import SettableClock
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.run_log_ports import LogFilter
from application.use_cases.run_logs import PurgedRunLog, PurgeRunLogs
from domain.run_logs import LogTotals
from tests.integration.conftest import at_revision
from tests.integration.test_migration_0015_run_logs_artifacts import T0
from tests.integration.test_migration_0015_run_logs_artifacts import _fill as runs_of_0015

RUNS_0015 = ("run-1", "run-2")  # the 0015 test's running runs; run-1 finishes here
OLD, LIVE = RUNS_0015
FINISHED = T0 + timedelta(hours=1)


def _fill(url: str) -> None:
    runs_of_0015(url)
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    lines = [
        {"run_id": run_id, "seq": seq, "at": T0, "level": "info", "message": f"line {seq}"}
        for run_id, count in ((OLD, 3), (LIVE, 2))
        for seq in range(1, count + 1)
    ]
    totals = [
        {"run_id": run_id, "lines": count, "bytes": 6 * count, "truncated": False}
        for run_id, count in ((OLD, 3), (LIVE, 2))
    ]
    runs = t["test_runs"]
    try:
        with engine.begin() as connection:
            connection.execute(
                runs.update()
                .where(runs.c.id == OLD)
                .values(status="completed", verdict="pass", finished_at=FINISHED)
            )
            connection.execute(t["run_log_lines"].insert(), lines)
            connection.execute(t["run_log_totals"].insert(), totals)
    finally:
        engine.dispose()


def test_logs_from_before_are_not_purged_and_can_be(empty_database: str) -> None:
    url = at_revision(empty_database, "0019")
    _fill(url)
    upgrade_schema(url)  # head: the repositories read the columns of later revisions
    engine = make_engine(url)
    uow = functools.partial(SqlAlchemyUnitOfWork, make_session_factory(engine))
    try:
        with uow(read_only=True) as work:
            assert work.run_logs.totals(OLD) == LogTotals(3, 18, False, None)
            assert work.run_logs.totals(LIVE) == LogTotals(2, 12, False, None)
        clock = SettableClock(T0 + timedelta(days=91))
        purged = PurgeRunLogs(uow, clock)(timedelta(days=90))
        assert purged == [PurgedRunLog(OLD, 3, 18)]
        with uow(read_only=True) as work:
            (marker,) = work.run_logs.lines(OLD, LogFilter(), 0, 10)
            assert marker.seq == 4 and "removed 3 lines" in marker.message
            assert work.run_logs.totals(OLD).purged_at == clock.now()
            assert len(work.run_logs.lines(LIVE, LogFilter(), 0, 10)) == 2
    finally:
        engine.dispose()


def test_down_again_drops_the_column(empty_database: str) -> None:
    url = at_revision(empty_database, "0019")
    _fill(url)
    upgrade_schema(url, "0020")
    downgrade_schema(url, "0019")
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("run_log_totals")}
        indexes = {i["name"] for i in inspector.get_indexes("run_log_totals")}
        assert "purged_at" not in columns and "ix_run_log_totals_not_purged" not in indexes
    finally:
        engine.dispose()
    upgrade_schema(url, "0020")  # and up again, over the same rows
