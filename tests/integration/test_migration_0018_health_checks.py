"""Migration 0018 on a database with rows in it: the devices there are of unknown health with
nothing owed (no health check has run yet), every run so far is a normal run (it keeps
counting in statistics), and the designations table is there to be used. Also down again and
up over the same rows."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import RunFilter
from domain.health import DeviceHealth
from domain.health_checks import HealthCheck
from domain.test_runs import RunPurpose
from tests.integration.conftest import at_revision

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ENVIRONMENT = {"id": "e1", "name": "bench", "description": "", "variables": {}}


@pytest.fixture
def url_at_0017(empty_database: str) -> str:
    return at_revision(empty_database, "0017")


def _fill(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    device = {
        "id": "d1",
        "name": "meter",
        "name_key": "meter",
        "model": "EM-340",
        "serial": "1",
        "firmware_version": "1.0.0",
        "location": "",
        "service_state": "in_service",
        "status": "available",
        "created_at": T0,
        "updated_at": T0,
        "version": 1,
    }
    run = {
        "id": "run-1",
        "status": "completed",
        "verdict": "pass",
        "environment_id": "e1",
        "environment": ENVIRONMENT,
        "parameters": {},
        "started_by": "engineer@lab",
        "created_at": T0,
        "started_at": T0,
        "finished_at": T0 + timedelta(minutes=1),
        "deadline": T0 + timedelta(hours=1),
        "failure_reason": "",
        "progress": 1.0,
        "progress_message": "",
        "runner": "",
        "version": 3,
    }
    try:
        with engine.begin() as connection:
            connection.execute(
                t["devices"].insert(),
                [device, {**device, "id": "d2", "name": "m2", "name_key": "m2"}],
            )
            connection.execute(t["test_runs"].insert(), [run])
    finally:
        engine.dispose()


def test_rows_from_before_are_unknown_health_and_normal_runs(url_at_0017: str) -> None:
    _fill(url_at_0017)
    upgrade_schema(url_at_0017)  # head: read back through the repositories only there
    engine = make_engine(url_at_0017)
    uow = functools.partial(SqlAlchemyUnitOfWork, make_session_factory(engine))
    try:
        with uow() as work:
            device = work.devices.get("d1")
            assert device.health is DeviceHealth.UNKNOWN
            assert device.health_note is None
            assert (device.health_checked_at, device.runs_since_health_check) == (None, 0)
            assert device.health_check_owed is False
            run = work.test_runs.get("run-1")
            assert run.purpose is RunPurpose.NORMAL
            normal = work.test_runs.list(RunFilter(purpose=RunPurpose.NORMAL), 10, None)
            assert [r.id for r in normal] == ["run-1"]
            assert work.test_runs.list(RunFilter(purpose=RunPurpose.HEALTH_CHECK), 10, None) == []
            stats = work.statistics.lab_statistics(T0 - timedelta(days=1), 5)
            assert stats.verdicts_by_day == [("2026-12-01", "pass", 1)]
            assert work.health_checks.list() == []
            # the new columns and table are written and read back
            check = HealthCheck("h1", "self test", "c1", "e1", model="EM-340", every_runs=3)
            work.health_checks.add(check)
            device.run_finished(T0)
            device.health_check_started(T0)
            device.record_health_check("run-9", "fail", T0)
            work.devices.update(device)
            work.commit()
        with uow() as work:
            (check,) = work.health_checks.list()
            assert (check.model, check.every_runs, check.after_service) == ("EM-340", 3, True)
            device = work.devices.get("d1")
            assert device.health is DeviceHealth.BAD
            assert device.health_note.run_id == "run-9"
            assert device.health_checked_at == T0
            assert work.devices.get("d2").health is DeviceHealth.UNKNOWN
    finally:
        engine.dispose()


def test_down_again_and_up_over_the_same_rows(url_at_0017: str) -> None:
    _fill(url_at_0017)
    upgrade_schema(url_at_0017, "0018")
    downgrade_schema(url_at_0017, "0017")
    engine = make_engine(url_at_0017)
    try:
        inspector = sa.inspect(engine)
        assert "health_checks" not in inspector.get_table_names()
        assert "health" not in {c["name"] for c in inspector.get_columns("devices")}
        assert "purpose" not in {c["name"] for c in inspector.get_columns("test_runs")}
    finally:
        engine.dispose()
    upgrade_schema(url_at_0017, "0018")
