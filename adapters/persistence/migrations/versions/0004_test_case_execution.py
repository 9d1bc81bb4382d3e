"""How a test case is executed becomes part of its definition (job contract version 2).

- test_cases.execution: {"executor", "command", "per_device"} (JSON). A case's default
  parameters `executor`, `command` and `command_per_device` — where the runner used to read
  the execution from — move into it: a command string is split like a shell would, a command
  without an executor means the command executor. A case whose values cannot be an execution
  (an unknown executor, a command that is no list of strings) keeps them as plain parameters
  and leaves its execution to the runner's default; a warning names it.
- the run snapshots (test_run_cases.snapshot) get the execution their case had: taken from
  the snapshot's parameters, leaving out the names the run's own parameters set, since a run's
  parameters never decide what runs. Their parameters stay as they were (history stays true).
- jobs not yet published (outbox rows without sent_at) are rewritten to contract version 2
  with the same rule, so runs queued before the upgrade still execute on upgraded runners.
  A job already on the broker stays version 1: upgraded runners dead-letter it and its run
  expires at its deadline.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging
import shlex
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

EXECUTORS = ("simulate", "command", "influxdb")
FORMER_PARAMETERS = ("executor", "command", "command_per_device")
DEFAULT = {"executor": "", "command": [], "per_device": True}
MAX_ARGUMENTS, MAX_ARGUMENT_LENGTH = 64, 4096


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


test_cases = sa.table(
    "test_cases",
    sa.column("id", sa.String()),
    sa.column("name", sa.String()),
    sa.column("default_parameters", _json()),
    sa.column("execution", _json()),
)
test_runs = sa.table("test_runs", sa.column("id", sa.String()), sa.column("parameters", _json()))
test_run_cases = sa.table(
    "test_run_cases",
    sa.column("run_id", sa.String()),
    sa.column("position", sa.Integer()),
    sa.column("snapshot", _json()),
)
outbox = sa.table(
    "outbox",
    sa.column("id", sa.String()),
    sa.column("payload", _json()),
    sa.column("sent_at", sa.DateTime(timezone=True)),
)


def _argv(command: Any) -> list[str] | None:
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError:
            return None
    if not isinstance(command, list) or not command or len(command) > MAX_ARGUMENTS:
        return None
    for part in command:
        if not isinstance(part, str) or len(part) > MAX_ARGUMENT_LENGTH or "\x00" in part:
            return None
    return command if command[0].strip() else None


def _execution_of(parameters: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
    """The execution the parameters asked the version 1 runner for, and the names it came
    from; None when they cannot be one."""
    executor = parameters.get("executor") or ("command" if "command" in parameters else "")
    if executor not in ("", *EXECUTORS):
        return None
    if executor != "command":
        moved = ["executor"] if "executor" in parameters else []
        return {**DEFAULT, "executor": executor}, moved
    argv = _argv(parameters.get("command"))
    if argv is None:
        return None
    per_device = parameters.get("command_per_device", True) is not False
    moved = [name for name in FORMER_PARAMETERS if name in parameters]
    return {"executor": "command", "command": argv, "per_device": per_device}, moved


def _snapshot_execution(case_parameters: dict[str, Any], run_parameters: Any) -> dict[str, Any]:
    """A run's snapshot holds the case's defaults overlaid with the run's parameters; only
    what the case itself said counts."""
    set_by_run = set(run_parameters) if isinstance(run_parameters, dict) else set()
    own = {k: v for k, v in (case_parameters or {}).items() if k not in set_by_run}
    found = _execution_of(own)
    return found[0] if found else dict(DEFAULT)


def upgrade() -> None:
    with op.batch_alter_table("test_cases") as batch:
        batch.add_column(sa.Column("execution", _json(), nullable=True))
    connection = op.get_bind()

    rows = connection.execute(
        sa.select(test_cases.c.id, test_cases.c.name, test_cases.c.default_parameters)
    ).all()
    for row in rows:
        parameters = dict(row.default_parameters or {})
        found = _execution_of(parameters)
        if found is None:
            log.warning(
                "test case %r (%s): its parameters %s cannot be an execution; they stay plain "
                "parameters and the case runs with the runner's default executor until an "
                "admin sets its execution",
                row.name,
                row.id,
                ", ".join(f"{k}={parameters[k]!r}" for k in FORMER_PARAMETERS if k in parameters),
            )
            execution, moved = dict(DEFAULT), []
        else:
            execution, moved = found
        for name in moved:
            parameters.pop(name)
        connection.execute(
            sa.update(test_cases)
            .where(test_cases.c.id == row.id)
            .values(execution=execution, default_parameters=parameters)
        )
    with op.batch_alter_table("test_cases") as batch:
        batch.alter_column("execution", existing_type=_json(), nullable=False)

    run_parameters = {
        row.id: row.parameters
        for row in connection.execute(sa.select(test_runs.c.id, test_runs.c.parameters))
    }
    for row in connection.execute(sa.select(test_run_cases)).all():
        snapshot = dict(row.snapshot)
        snapshot["execution"] = _snapshot_execution(
            snapshot.get("parameters") or {}, run_parameters.get(row.run_id)
        )
        connection.execute(
            sa.update(test_run_cases)
            .where(test_run_cases.c.run_id == row.run_id)
            .where(test_run_cases.c.position == row.position)
            .values(snapshot=snapshot)
        )

    for row in connection.execute(
        sa.select(outbox.c.id, outbox.c.payload).where(outbox.c.sent_at.is_(None))
    ).all():
        payload = dict(row.payload)
        if payload.get("contract_version") != 1:
            continue
        payload["contract_version"] = 2
        for case in payload.get("test_cases") or []:
            if isinstance(case, dict):
                case["execution"] = _snapshot_execution(
                    case.get("parameters") or {}, payload.get("parameters")
                )
        connection.execute(sa.update(outbox).where(outbox.c.id == row.id).values(payload=payload))


def _as_parameters(parameters: Any, execution: Any) -> dict[str, Any]:
    """The version 1 form: the execution as the parameters the runner read it from."""
    parameters = dict(parameters or {})
    execution = execution if isinstance(execution, dict) else DEFAULT
    if execution.get("executor"):
        parameters["executor"] = execution["executor"]
    if execution.get("command"):
        parameters["command"] = list(execution["command"])
    if execution.get("per_device") is False:
        parameters["command_per_device"] = False
    return parameters


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(test_cases.c.id, test_cases.c.default_parameters, test_cases.c.execution)
    ).all()
    for row in rows:
        parameters = _as_parameters(row.default_parameters, row.execution)
        connection.execute(
            sa.update(test_cases)
            .where(test_cases.c.id == row.id)
            .values(default_parameters=parameters)
        )
    with op.batch_alter_table("test_cases") as batch:
        batch.drop_column("execution")
    for row in connection.execute(
        sa.select(outbox.c.id, outbox.c.payload).where(outbox.c.sent_at.is_(None))
    ).all():
        payload = dict(row.payload)
        if payload.get("contract_version") == 2:
            payload["contract_version"] = 1
            for case in payload.get("test_cases") or []:
                if isinstance(case, dict):
                    case["parameters"] = _as_parameters(
                        case.get("parameters"), case.get("execution")
                    )
            connection.execute(
                sa.update(outbox).where(outbox.c.id == row.id).values(payload=payload)
            )
