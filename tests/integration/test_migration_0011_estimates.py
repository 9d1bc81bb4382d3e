"""Migration 0011 on a database with rows in it: waiting and booked runs from before keep
their meaning, have no estimate, and take one from the new code (which leaves the version
alone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from domain.test_runs import RunStatus
from tests.integration.conftest import at_revision

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
CASE = {
    "id": "c1",
    "version": 1,
    "name": "soak",
    "description": "",
    "criteria": [],
    "duration_s": 600,
    "timeout_s": 1200,
    "parameters": {},
    "tags": [],
}


@pytest.fixture
def url_at_0009(empty_database: str) -> str:
    return at_revision(empty_database, "0009")


def _fill(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    environment = {"id": "e1", "name": "bench", "description": "", "variables": {}}
    run = {
        "verdict": None,
        "environment_id": "e1",
        "environment": environment,
        "parameters": {},
        "started_by": "engineer@lab",
        "created_at": T0,
        "deadline": T0 + timedelta(hours=1),
        "failure_reason": "",
        "progress": 0.0,
        "progress_message": "",
        "runner": "",
        "version": 3,
    }
    try:
        with engine.begin() as connection:
            connection.execute(
                t["test_runs"].insert(),
                [
                    {**run, "id": "queued", "status": "queued"},
                    {
                        **run,
                        "id": "waiting",
                        "status": "waiting",
                        "requested_device_ids": ["d1"],
                        "queue_timeout_at": T0 + timedelta(days=1),
                    },
                ],
            )
            connection.execute(
                t["test_run_cases"].insert(),
                [
                    {
                        "run_id": i,
                        "position": 0,
                        "test_case_id": "c1",
                        "version": 1,
                        "snapshot": CASE,
                    }
                    for i in ("queued", "waiting")
                ],
            )
    finally:
        engine.dispose()


def test_runs_from_before_have_no_estimate_and_take_one(url_at_0009: str) -> None:
    _fill(url_at_0009)
    upgrade_schema(url_at_0009, "0011")
    engine = make_engine(url_at_0009)
    estimate = T0 + timedelta(minutes=10)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, estimated_start_at FROM test_runs ORDER BY id")
            ).all()
            assert [tuple(r) for r in rows] == [("queued", None), ("waiting", None)]
        # head: the repositories read the columns of later revisions too
        upgrade_schema(url_at_0009)
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            (waiting,) = uow.test_runs.list_waiting()
            assert waiting.id == "waiting" and waiting.estimated_start_at is None
            assert uow.test_runs.get("queued").status is RunStatus.QUEUED
            uow.test_runs.set_estimated_starts({"waiting": estimate, "queued": estimate})
            uow.commit()
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, version FROM test_runs ORDER BY id")
            ).all()
            assert [tuple(r) for r in rows] == [("queued", 3), ("waiting", 3)]
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            assert uow.test_runs.get("waiting").estimated_start_at == estimate
            assert uow.test_runs.get("queued").estimated_start_at is None
    finally:
        engine.dispose()
