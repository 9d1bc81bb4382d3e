"""Migration 0016 on a database with runs in it: each runner named by a run is registered,
first seen at its earliest run, last seen at its latest report, its finished and failed runs
counted; runs of nobody register nobody; reports from then on add to what was filled in.
Also down again: the table and the index go."""

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
from application.use_cases.runners import GetRunner, ListRunners
from tests.integration.conftest import Lab, at_revision

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ENVIRONMENT = {"id": "e1", "name": "bench", "description": "", "variables": {}}
# run n: runner, status (hours after T0 it was created; a run lasts ten minutes)
HISTORY = [
    ("r1", "completed"),
    ("r1", "failed"),
    ("r1", "aborted"),
    ("r2", "completed"),
    ("r1", "running"),
    ("", "queued"),  # nobody claimed it
    ("", "completed"),  # given back, then completed by an older runner naming nobody
]


@pytest.fixture
def url_at_0015(empty_database: str) -> str:
    return at_revision(empty_database, "0015")


def _fill(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    runs = []
    for n, (runner, status) in enumerate(HISTORY):
        at = T0 + timedelta(hours=n)
        finished = status in ("completed", "failed", "aborted")
        runs.append(
            {
                "id": f"run-{n}",
                "status": status,
                "verdict": "pass" if status == "completed" else None,
                "environment_id": "e1",
                "environment": ENVIRONMENT,
                "parameters": {},
                "started_by": "engineer@lab",
                "created_at": at,
                "started_at": None if status == "queued" else at + timedelta(minutes=1),
                "finished_at": at + timedelta(minutes=10) if finished else None,
                "deadline": at + timedelta(hours=1),
                "failure_reason": "PSU silent" if status == "failed" else "",
                "progress": 1.0 if finished else 0.5,
                "progress_message": "",
                "last_report_at": None if status == "queued" else at + timedelta(minutes=9),
                "runner": runner,
                "version": 3,
            }
        )
    try:
        with engine.begin() as connection:
            connection.execute(meta.tables["test_runs"].insert(), runs)
    finally:
        engine.dispose()


def test_runners_named_by_runs_are_registered_with_their_counts(url_at_0015: str) -> None:
    _fill(url_at_0015)
    upgrade_schema(url_at_0015)  # to head: read back through the repositories only there
    engine = make_engine(url_at_0015)
    uow = functools.partial(SqlAlchemyUnitOfWork, make_session_factory(engine))
    clock = SettableClock(T0 + timedelta(hours=4, minutes=9, seconds=30))
    try:
        views = ListRunners(uow, clock, 60)()
        assert [v.runner.id for v in views] == ["r1", "r2"]
        r1 = GetRunner(uow, clock, 60)("r1")
        assert r1.runner.first_seen_at == T0 + timedelta(minutes=1)
        assert r1.runner.last_seen_at == T0 + timedelta(hours=4, minutes=9)
        assert (r1.runner.runs_done, r1.runner.failures) == (3, 1)
        assert (r1.runner.host, r1.runner.executors, r1.runner.drained) == ("", (), False)
        assert r1.current_run_ids == ["run-4"] and r1.state.value == "online"
        assert [r.id for r in r1.recent_runs] == ["run-4", "run-2", "run-1", "run-0"]
        r2 = GetRunner(uow, clock, 60)("r2").runner
        assert (r2.runs_done, r2.failures) == (1, 0)

        # the registry carries on from there: r1's running run completes
        lab = Lab(uow, clock, SequentialIds(), engine)
        lab.record_result("run-4", [])
        assert GetRunner(uow, clock, 60)("r1").runner.runs_done == 4
    finally:
        engine.dispose()


def test_down_again_drops_the_registry(url_at_0015: str) -> None:
    _fill(url_at_0015)
    upgrade_schema(url_at_0015, "0016")
    downgrade_schema(url_at_0015, "0015")
    engine = make_engine(url_at_0015)
    try:
        inspector = sa.inspect(engine)
        assert "runners" not in inspector.get_table_names()
        indexes = {i["name"] for i in inspector.get_indexes("test_runs")}
        assert "ix_test_runs_runner_created_at" not in indexes
    finally:
        engine.dispose()
    upgrade_schema(url_at_0015, "0016")  # and up again, over the same rows
