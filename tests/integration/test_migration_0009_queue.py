"""Migration 0009 on a database with rows in it: runs from before the queue keep their
meaning (priority normal, asked for exactly their devices, no queue timeout, devices without
a role) and can be read, booked further and queued behind by the new code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from domain.scheduling import Priority
from domain.test_runs import RunStatus
from tests.integration.conftest import at_revision

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
DEVICE = {
    "id": "d1",
    "name": "meter-01",
    "model": "EM-340",
    "serial": "",
    "firmware_version": "1.0",
    "labels": {},
}


@pytest.fixture
def url_at_0008(empty_database: str) -> str:
    return at_revision(empty_database, "0008")


def _fill(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    environment = {"id": "e1", "name": "bench", "description": "", "variables": {}}
    try:
        with engine.begin() as connection:
            connection.execute(
                t["test_runs"]
                .insert()
                .values(
                    id="r1",
                    status="queued",
                    verdict=None,
                    environment_id="e1",
                    environment=environment,
                    parameters={},
                    started_by="engineer@lab",
                    created_at=T0,
                    deadline=T0 + timedelta(hours=1),
                    failure_reason="",
                    progress=0.0,
                    progress_message="",
                    runner="",
                    version=1,
                )
            )
            connection.execute(
                t["test_run_devices"]
                .insert()
                .values(
                    run_id="r1",
                    position=0,
                    device_id="d1",
                    firmware_version="1.0",
                    snapshot=DEVICE,
                    run_created_at=T0,
                )
            )
    finally:
        engine.dispose()


def test_runs_from_before_the_queue_read_as_they_were(url_at_0008: str) -> None:
    _fill(url_at_0008)
    upgrade_schema(url_at_0008, "0009")
    # the repositories read the latest schema: what 0009 left must read right there
    upgrade_schema(url_at_0008)
    engine = make_engine(url_at_0008)
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            run = uow.test_runs.get("r1")
            assert run is not None
            assert run.status is RunStatus.QUEUED
            assert run.priority is Priority.NORMAL
            assert run.requested_device_ids == () and run.device_requests == ()
            assert run.queue_timeout_at is None
            assert [(d.id, d.role) for d in run.devices] == [("d1", None)]
            assert run.demand.device_ids == ("d1",)  # it asked for exactly its devices
            assert uow.test_runs.list_waiting() == []
            run.progress_message = "still here"
            uow.test_runs.update(run)  # and can be written by the new code
            uow.commit()
        with engine.connect() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT priority, role FROM test_runs r "
                    "JOIN test_run_devices b ON b.run_id = r.id"
                )
            ).one()
            assert tuple(row) == ("normal", None)
    finally:
        engine.dispose()
