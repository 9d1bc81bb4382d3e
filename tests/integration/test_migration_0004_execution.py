"""Migration 0004 on a database with rows in it: the execution moves out of test cases'
default parameters into their definition; run snapshots and unsent jobs get their case's
execution, never one from a run's parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.runner import parse_job
from domain.execution import Execution
from tests.integration.conftest import at_revision

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
CRITERIA = [{"metric": "voltage", "condition": "<=", "threshold": 240.0, "unit": "V"}]
HOSTILE = ["sh", "-c", "id"]  # a run's `command` parameter

CASES = {
    # id: (default parameters at 0003, execution after 0004, default parameters after 0004)
    "legacy": (
        {
            "executor": "command",
            "command": "/opt/lab/measure --bench '3 A'",
            "command_per_device": False,
            "load_kw": 2.5,
        },
        Execution("command", ("/opt/lab/measure", "--bench", "3 A"), per_device=False),
        {"load_kw": 2.5},
    ),
    "simulated": (
        {"executor": "simulate", "pass_probability": 0.9},
        Execution("simulate"),
        {"pass_probability": 0.9},
    ),
    "command-only": (
        {"command": ["/usr/bin/meter-check", "--all"]},
        Execution("command", ("/usr/bin/meter-check", "--all")),
        {},
    ),
    "broken": (
        {"executor": "telepathy", "command": [1, 2]},
        Execution(),
        {"executor": "telepathy", "command": [1, 2]},
    ),
    "plain": ({"load_kw": 1}, Execution(), {"load_kw": 1}),
}


@pytest.fixture
def url_at_0003(empty_database: str) -> str:
    return at_revision(empty_database, "0003")


def _snapshot(case_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": case_id,
        "version": 1,
        "name": case_id,
        "description": "",
        "criteria": CRITERIA,
        "duration_s": 0,
        "timeout_s": 60,
        "parameters": parameters,
        "tags": [],
    }


def _fill(url: str) -> None:
    """Rows as devicelab at revision 0003 wrote them."""
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    run_parameters = {"command": HOSTILE, "load_kw": 3}
    # a run of "legacy" and "simulated": its snapshots hold the defaults overlaid with the run's
    snapshots = [
        _snapshot(case_id, {**CASES[case_id][0], **run_parameters})
        for case_id in ("legacy", "simulated")
    ]
    device = {"id": "d1", "name": "meter-01", "model": "", "serial": "", "firmware_version": ""}
    device["labels"] = {}
    environment = {"id": "e1", "name": "bench", "description": "", "variables": {}}
    try:
        with engine.begin() as connection:
            for case_id, (parameters, _, _) in CASES.items():
                connection.execute(
                    t["test_cases"]
                    .insert()
                    .values(
                        id=case_id,
                        name=case_id,
                        description="",
                        criteria=CRITERIA,
                        duration_s=0,
                        timeout_s=60,
                        default_parameters=parameters,
                        tags=[],
                        version=1,
                        created_at=T0,
                        updated_at=T0,
                    )
                )
            for run_id in ("queued", "done"):
                connection.execute(
                    t["test_runs"]
                    .insert()
                    .values(
                        id=run_id,
                        status="queued",
                        verdict=None,
                        environment_id="e1",
                        environment=environment,
                        parameters=run_parameters,
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
                for position, snapshot in enumerate(snapshots):
                    connection.execute(
                        t["test_run_cases"]
                        .insert()
                        .values(
                            run_id=run_id,
                            position=position,
                            test_case_id=snapshot["id"],
                            version=1,
                            snapshot=snapshot,
                        )
                    )
                connection.execute(
                    t["test_run_devices"]
                    .insert()
                    .values(
                        run_id=run_id,
                        position=0,
                        device_id="d1",
                        firmware_version="",
                        snapshot=device,
                        run_created_at=T0,
                    )
                )
                payload = {
                    "contract_version": 1,
                    "run_id": run_id,
                    "created_at": T0.isoformat(),
                    "deadline": (T0 + timedelta(hours=1)).isoformat(),
                    "parameters": run_parameters,
                    "test_cases": snapshots,
                    "environment": environment,
                    "devices": [device],
                }
                connection.execute(
                    t["outbox"]
                    .insert()
                    .values(
                        id=f"job-{run_id}",
                        kind="test_run.job",
                        run_id=run_id,
                        payload=payload,
                        created_at=T0,
                        sent_at=None if run_id == "queued" else T0,
                        attempts=0,
                    )
                )
    finally:
        engine.dispose()


def _outbox_payloads(url: str) -> dict[str, dict[str, Any]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            outbox = sa.table("outbox", sa.column("id"), sa.column("payload", sa.JSON()))
            rows = connection.execute(sa.select(outbox.c.id, outbox.c.payload)).all()
            return {row.id: row.payload for row in rows}
    finally:
        engine.dispose()


def test_the_execution_moves_out_of_the_parameters_and_runs_keep_theirs(url_at_0003: str):
    _fill(url_at_0003)

    upgrade_schema(url_at_0003)

    engine = make_engine(url_at_0003)
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            for case_id, (_, execution, parameters) in CASES.items():
                case = uow.test_cases.get(case_id)
                assert case is not None
                assert (case.execution, case.default_parameters) == (execution, parameters), case_id
                assert case.version == 1
            run = uow.test_runs.get("queued")
            assert run is not None
            # "legacy" had its command overridden by the run: no execution comes of it
            assert [c.execution for c in run.test_cases] == [Execution(), Execution("simulate")]
            assert run.test_cases[0].parameters["command"] == ["sh", "-c", "id"]  # history
    finally:
        engine.dispose()
    payloads = _outbox_payloads(url_at_0003)
    unsent, sent = payloads["job-queued"], payloads["job-done"]
    assert (unsent["contract_version"], sent["contract_version"]) == (2, 1)
    job = parse_job(
        {**unsent, "callback": {"base_url": "http://lab/api/runner/test-runs/queued", "token": "t"}}
    )
    assert [c.execution for c in job.test_cases] == [Execution(), Execution("simulate")]


def test_downgrading_puts_the_execution_back_into_the_parameters(url_at_0003: str):
    _fill(url_at_0003)
    upgrade_schema(url_at_0003)

    downgrade_schema(url_at_0003, "0003")

    engine = make_engine(url_at_0003)
    try:
        with engine.connect() as connection:
            cases = sa.table(
                "test_cases", sa.column("id"), sa.column("default_parameters", sa.JSON())
            )
            rows = {
                r.id: r.default_parameters
                for r in connection.execute(sa.select(cases.c.id, cases.c.default_parameters))
            }
    finally:
        engine.dispose()
    assert rows["legacy"] == {
        "executor": "command",
        "command": ["/opt/lab/measure", "--bench", "3 A"],
        "command_per_device": False,
        "load_kw": 2.5,
    }
    assert rows["simulated"] == {"executor": "simulate", "pass_probability": 0.9}
    assert rows["plain"] == {"load_kw": 1}
    assert _outbox_payloads(url_at_0003)["job-queued"]["contract_version"] == 1
