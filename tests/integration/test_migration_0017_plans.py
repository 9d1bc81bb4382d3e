"""Migration 0017 on a database with rows in it: the devices, test cases and environments
from before are there to be planned with, firmware they already had is no sighting, and a
plan defined afterwards runs on firmware reported afterwards. Down again: the tables go."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.use_cases.devices import RecordHeartbeat
from application.use_cases.plans import (
    CreatePlan,
    FireFirmwareTriggers,
    ListPlanRuns,
    PlanInput,
    PlanStarter,
)
from domain.plans import Trigger, TriggerKind
from tests.integration.conftest import at_revision

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TABLES = {"test_plans", "plan_runs", "firmware_sightings"}


@pytest.fixture
def url_at_0016(empty_database: str) -> str:
    return at_revision(empty_database, "0016")


def _fill(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    try:
        with engine.begin() as connection:
            connection.execute(
                t["devices"].insert(),
                [
                    {
                        "id": "d1",
                        "name": "meter 1",
                        "name_key": "meter 1",
                        "model": "EM-340",
                        "serial": "1",
                        "firmware_version": "1.0.0",
                        "location": "",
                        "service_state": "in_service",
                        "status": "available",
                        "last_seen_at": T0,
                        "created_at": T0,
                        "updated_at": T0,
                        "version": 1,
                    }
                ],
            )
            connection.execute(
                t["test_cases"].insert(),
                [
                    {
                        "id": "c1",
                        "name": "voltage",
                        "name_key": "voltage",
                        "description": "",
                        "criteria": [{"metric": "v", "condition": "<=", "threshold": 1.0}],
                        "duration_s": 60,
                        "timeout_s": 300,
                        "default_parameters": {},
                        "tags": [],
                        "execution": {},
                        "version": 1,
                        "created_at": T0,
                        "updated_at": T0,
                    }
                ],
            )
            connection.execute(
                t["environments"].insert(),
                [
                    {
                        "id": "e1",
                        "name": "bench",
                        "name_key": "bench",
                        "description": "",
                        "variables": {},
                        "created_at": T0,
                        "updated_at": T0,
                    }
                ],
            )
    finally:
        engine.dispose()


def test_plans_work_on_the_rows_from_before(url_at_0016: str) -> None:
    _fill(url_at_0016)
    upgrade_schema(url_at_0016)
    engine = make_engine(url_at_0016)
    uow = functools.partial(SqlAlchemyUnitOfWork, make_session_factory(engine))
    clock, ids = SettableClock(T0), SequentialIds()
    starter = PlanStarter(ids)
    try:
        plan = CreatePlan(uow, clock, ids)(
            PlanInput(
                name="on firmware",
                test_case_ids=["c1"],
                environment_ids=["e1"],
                device_ids=["d1"],
                triggers=[Trigger(TriggerKind.NEW_FIRMWARE)],
            )
        )
        fire = FireFirmwareTriggers(uow, clock, starter)
        assert fire() == []  # 1.0.0 was there before: no sighting
        RecordHeartbeat(uow, clock, ids)("d1", "1.1.0")
        assert len(fire()) == 1
        (view,) = ListPlanRuns(uow)(plan.id).items
        assert view.plan_run.cause.firmware_version == "1.1.0"
        assert view.progress.total == 1
    finally:
        engine.dispose()


def test_down_again_drops_the_plan_tables(url_at_0016: str) -> None:
    _fill(url_at_0016)
    upgrade_schema(url_at_0016)
    downgrade_schema(url_at_0016, "0016")
    engine = make_engine(url_at_0016)
    try:
        assert not TABLES & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    upgrade_schema(url_at_0016)  # and up again, over the same rows
