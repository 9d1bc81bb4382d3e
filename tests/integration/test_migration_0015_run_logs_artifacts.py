"""Migration 0015 on a database with runs in it: the existing runs stay as they were and take
log lines and artifact records through the repositories once at head; deleting a run takes
its lines and records with it; down again, the tables go."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.run_log_ports import LogFilter
from domain.artifacts import Artifact
from domain.run_logs import LogLevel, LogLine, LogTotals
from tests.integration.conftest import at_revision

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
NEW_TABLES = {"run_log_lines", "run_log_totals", "run_artifacts", "artifact_chunks"}


@pytest.fixture
def url_at_0013(empty_database: str) -> str:
    return at_revision(empty_database, "0013")


def _fill(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    run = {
        "environment_id": "e1",
        "environment": {"id": "e1", "name": "bench", "description": "", "variables": {}},
        "parameters": {},
        "started_by": "engineer@lab",
        "created_at": T0,
        "started_at": T0,
        "deadline": T0 + timedelta(hours=1),
        "failure_reason": "",
        "progress": 0.5,
        "progress_message": "",
        "runner": "r1",
        "version": 2,
        "verdict": None,
        "finished_at": None,
    }
    try:
        with engine.begin() as connection:
            connection.execute(
                meta.tables["test_runs"].insert(),
                [
                    {**run, "id": "run-1", "status": "running"},
                    {**run, "id": "run-2", "status": "running"},
                ],
            )
    finally:
        engine.dispose()


def test_existing_runs_take_lines_and_artifacts_after_the_upgrade(url_at_0013: str) -> None:
    _fill(url_at_0013)
    upgrade_schema(url_at_0013, "head")
    engine = make_engine(url_at_0013)
    uow = functools.partial(SqlAlchemyUnitOfWork, make_session_factory(engine))
    try:
        with uow() as work:
            assert work.test_runs.get("run-1").status.value == "running"
            assert work.run_logs.totals("run-1") == LogTotals()
            totals = work.run_logs.totals_for_update("run-1")
            lines = [
                LogLine(T0, LogLevel.INFO, "hello", seq=1),
                LogLine(T0, LogLevel.ERROR, "broke", device_id="d1", seq=2),
            ]
            work.run_logs.append("run-1", lines, LogTotals(2, 10, False))
            work.artifacts.add(
                Artifact("a1", "run-1", "v.csv", "text/csv", 3, "0" * 64, T0, "d1", None)
            )
            work.commit()
        assert totals == LogTotals()
        with uow() as work:
            assert work.run_logs.totals_for_update("run-1") == LogTotals(2, 10, False)
            errors = work.run_logs.lines("run-1", LogFilter(min_level=LogLevel.WARNING), 0, 10)
            assert [line.message for line in errors] == ["broke"]
            assert work.run_logs.lines("run-1", LogFilter(), 1, 10)[0].seq == 2
            assert [a.name for a in work.artifacts.of_run("run-1")] == ["v.csv"]
            assert work.artifacts.bytes_of_run("run-1") == 3
            assert work.artifacts.bytes_of_run("run-2") == 0
            assert work.artifacts.older_than(T0 + timedelta(seconds=1), 10)[0].id == "a1"
        with engine.begin() as connection:  # deleting a run deletes its log and records
            connection.execute(sa.text("DELETE FROM test_runs WHERE id = 'run-1'"))
        with uow() as work:
            assert work.run_logs.lines("run-1", LogFilter(), 0, 10) == []
            assert work.artifacts.of_run("run-1") == []
    finally:
        engine.dispose()
    downgrade_schema(url_at_0013, "0013")
    engine = make_engine(url_at_0013)
    try:
        assert NEW_TABLES.isdisjoint(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
