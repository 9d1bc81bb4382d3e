"""SQL repositories: the ports of `application.ports` on SQLAlchemy Core.

Rows are mapped to domain entities and back by hand; the domain never sees SQLAlchemy. Each
read returns fresh entities (changing one changes nothing until `update()`), and nothing here
commits: the unit of work owns the transaction.

Concurrency: devices and runs carry a version that `update()` checks and bumps (optimistic
locking), and `get_many_for_update` / `get(for_update=True)` take row locks on PostgreSQL.
SQLite has no row locks; the engine opens every transaction with BEGIN IMMEDIATE instead, which
serialises writers (see `engine.py`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from adapters.persistence import tables as t
from adapters.persistence.tables import UtcDateTime
from application.errors import AlreadyExists, ConcurrentUpdate
from application.ports import (
    Change,
    DeviceFilter,
    LabStatistics,
    NameFilter,
    OutboxMessage,
    RunFilter,
    StreamLease,
)
from domain.devices import Device, DeviceStatus, StatusChange
from domain.environments import Environment, EnvironmentSnapshot
from domain.errors import InvalidValue
from domain.execution import Execution
from domain.names import name_key
from domain.scheduling import DeviceRequest, Priority
from domain.test_cases import Condition, Criterion, TestCase, TestCaseSnapshot
from domain.test_runs import (
    CaseResult,
    DeviceSnapshot,
    Measurement,
    RunStatus,
    TestRun,
    Verdict,
)

# PostgreSQL error codes of transient conflicts: the whole transaction may simply be retried.
_RETRYABLE_PGCODES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


class _SqlRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def _execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        try:
            return self.session.execute(statement, params)  # type: ignore[return-value]
        except OperationalError as error:
            if is_transient(error):
                raise ConcurrentUpdate(
                    "the database was busy with a conflicting change; retry"
                ) from error
            raise

    @contextmanager
    def _unique_name(self, kind: str, constraint: str, name: str) -> Iterator[None]:
        """Turn a unique-name violation (a race the use case's own check could not see)
        into the same error the use case raises."""
        try:
            yield
        except IntegrityError as error:
            if _violates(error, constraint):
                raise AlreadyExists(kind, "name", name) from error
            raise


def is_transient(error: OperationalError) -> bool:
    code = getattr(error.orig, "pgcode", None)
    if code is not None:
        return code in _RETRYABLE_PGCODES
    return "database is locked" in str(error.orig)


def _violates(error: IntegrityError, constraint: str) -> bool:
    diag = getattr(error.orig, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name in (constraint, f"{constraint}_key")  # name or its key
    # SQLite names the columns, not the constraint: "UNIQUE constraint failed: devices.name"
    # (or devices.name_key)
    table = constraint.removeprefix("uq_").removesuffix("_name")
    return f"UNIQUE constraint failed: {table}.name" in str(error.orig)


def _after_by_name(table: sa.Table, after: tuple | None) -> sa.ColumnElement[bool] | None:
    """Keyset condition for lists ordered by (name, id) ascending."""
    if after is None:
        return None
    name, item_id = after
    # the redundant `name >= :name` is what an index on name can start its scan from; the OR
    # alone is only a filter, and a deep page would read every row before the cursor
    return sa.and_(
        table.c.name >= name,
        sa.or_(table.c.name > name, sa.and_(table.c.name == name, table.c.id > item_id)),
    )


def _contains_text(column: sa.ColumnElement[str], text: str) -> sa.ColumnElement[bool]:
    return sa.func.lower(column).contains(text.lower(), autoescape=True)


# -- devices ---------------------------------------------------------------------------


def _device_values(device: Device) -> dict[str, Any]:
    return {
        "name": device.name,
        "name_key": device.name_key,
        "model": device.model,
        "serial": device.serial,
        "firmware_version": device.firmware_version,
        "location": device.location,
        "held_by": device.held_by,
        "marked_offline": device.marked_offline,
        "status": device.status.value,
        "last_seen_at": device.last_seen_at,
        "created_at": device.created_at,
        "updated_at": device.updated_at,
    }


# The statements of the start path, built once: values travel as parameters, so no statement
# object (and cache key) is built per call.
_UPDATE_DEVICE = t.devices.update().where(
    t.devices.c.id == sa.bindparam("match_id"),
    t.devices.c.version == sa.bindparam("match_version"),
)
_INSERT_RUN = t.test_runs.insert()
# the key of the queue's advisory lock on PostgreSQL: any fixed number no other lock uses
_QUEUE_LOCK_KEY = 0x64657669_63656C61  # "devicela"
_UPDATE_RUN = t.test_runs.update().where(
    t.test_runs.c.id == sa.bindparam("match_id"),
    t.test_runs.c.version == sa.bindparam("match_version"),
)
_INSERT_OUTBOX = t.outbox.insert()
_MARK_SENT = (
    t.outbox.update()
    .where(t.outbox.c.id == sa.bindparam("match_id"))
    .values(sent_at=sa.bindparam("at"), claimed_until=None, attempts=t.outbox.c.attempts + 1)
)


def _device(row: Any) -> Device:
    return Device(
        id=row.id,
        name=row.name,
        model=row.model,
        serial=row.serial,
        firmware_version=row.firmware_version,
        location=row.location,
        labels={},
        held_by=row.held_by,
        marked_offline=row.marked_offline,
        last_seen_at=row.last_seen_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


class SqlDeviceRepository(_SqlRepository):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        # labels as last read or written, so an update rewrites them only when they changed
        self._known_labels: dict[str, dict[str, str]] = {}

    def add(self, device: Device) -> None:
        values = {"id": device.id, **_device_values(device), "version": device.version + 1}
        with self._unique_name("device", "uq_devices_name", device.name):
            self._execute(sa.insert(t.devices).values(values))
        self._insert_labels(device.id, device.labels)
        self._insert_history(device)
        _log_change(self, "device", device.id)
        device.version += 1

    def update(self, device: Device) -> None:
        values = {
            **_device_values(device),
            "version": device.version + 1,
            "match_id": device.id,
            "match_version": device.version,
        }
        with self._unique_name("device", "uq_devices_name", device.name):
            result = self._execute(_UPDATE_DEVICE, values)
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"device {device.name} was changed meanwhile; retry")
        if self._known_labels.get(device.id) != device.labels:
            self._execute(
                sa.delete(t.device_labels).where(t.device_labels.c.device_id == device.id)
            )
            self._insert_labels(device.id, device.labels)
        self._insert_history(device)
        _log_change(self, "device", device.id)
        device.version += 1

    def remove(self, device: Device) -> None:
        # labels and status history go with it (ON DELETE CASCADE)
        self._execute(sa.delete(t.devices).where(t.devices.c.id == device.id))
        self._known_labels.pop(device.id, None)
        _log_change(self, "device", device.id, deleted=True)

    def get(self, device_id: str) -> Device | None:
        found = self._select(sa.select(t.devices).where(t.devices.c.id == device_id))
        return found[0] if found else None

    def get_by_name(self, name: str) -> Device | None:
        found = self._select(sa.select(t.devices).where(t.devices.c.name_key == name_key(name)))
        return found[0] if found else None

    def get_many_for_update(self, device_ids: Sequence[str]) -> list[Device]:
        if not device_ids:
            return []
        # Locking in id order means two transactions never wait for each other in a cycle.
        devices, labels = t.devices.c, t.device_labels.c
        statement = (
            sa.select(t.devices, labels.key.label("label_key"), labels.value.label("label_value"))
            .outerjoin(t.device_labels, labels.device_id == devices.id)
            .where(devices.id.in_(sorted(set(device_ids))))
            .order_by(devices.id, labels.key)
            .with_for_update(of=t.devices)  # the labels stay unlocked (and may be absent)
        )
        return self._collect(self._execute(statement))

    def list(self, where: DeviceFilter, limit: int, after: tuple | None) -> list[Device]:
        statement = sa.select(t.devices)
        if where.status is not None:
            statement = statement.where(t.devices.c.status == DeviceStatus(where.status).value)
        if where.text:
            statement = statement.where(
                sa.or_(
                    *(
                        _contains_text(column, where.text)
                        for column in (
                            t.devices.c.name,
                            t.devices.c.serial,
                            t.devices.c.model,
                            t.devices.c.location,
                            t.devices.c.firmware_version,
                        )
                    )
                )
            )
        if where.label is not None:
            key, value = where.label
            label = sa.select(t.device_labels.c.device_id).where(
                t.device_labels.c.device_id == t.devices.c.id, t.device_labels.c.key == key
            )
            if value is not None:
                label = label.where(t.device_labels.c.value == value)
            statement = statement.where(label.exists())
        keyset = _after_by_name(t.devices, after)
        if keyset is not None:
            statement = statement.where(keyset)
        statement = statement.order_by(t.devices.c.name, t.devices.c.id).limit(limit)
        return self._select(statement)

    def list_silent(self, seen_before: datetime, limit: int) -> list[Device]:
        statement = (
            sa.select(t.devices)
            .where(
                t.devices.c.marked_offline.is_(sa.false()),
                t.devices.c.last_seen_at.is_not(None),
                t.devices.c.last_seen_at < seen_before,
            )
            .order_by(t.devices.c.id)
            .limit(limit)
        )
        return self._select(statement, order=("id",))

    def history(self, device_id: str, limit: int) -> list[StatusChange]:
        changes = t.device_status_changes
        rows = self._execute(
            sa.select(changes)
            .where(changes.c.device_id == device_id)
            .order_by(changes.c.id.desc())
            .limit(limit)
        )
        return [
            StatusChange(
                at=row.at,
                from_status=DeviceStatus(row.from_status),
                to_status=DeviceStatus(row.to_status),
                actor=row.actor,
                reason=row.reason,
                run_id=row.run_id,
            )
            for row in rows
        ]

    def _select(
        self, statement: sa.Select[Any], order: Sequence[str] = ("name", "id")
    ) -> list[Device]:
        """The devices `statement` selects (a `select(t.devices)` with its filters, order and
        limit), with their labels, in `order` (column names). One query and one round trip:
        the statement's devices as a subquery, joined to their labels (a row per label). (An
        `id IN (subquery)` form reads the same but makes PostgreSQL scan every device.)"""
        page = statement.subquery("page")
        labels = t.device_labels.c
        rows = self._execute(
            sa.select(page, labels.key.label("label_key"), labels.value.label("label_value"))
            .select_from(page.outerjoin(t.device_labels, labels.device_id == page.c.id))
            .order_by(*(page.c[name] for name in order), labels.key)
        )
        return self._collect(rows)

    def _collect(self, rows: Any) -> list[Device]:
        """Devices from rows of device columns plus `label_key`/`label_value`, a row per
        label (or one with no label), a device's rows together."""
        found: list[Device] = []
        for row in rows:
            if not found or found[-1].id != row.id:
                found.append(_device(row))
            if row.label_key is not None:
                found[-1].labels[row.label_key] = row.label_value
        for device in found:
            self._known_labels[device.id] = dict(device.labels)
        return found

    def _insert_labels(self, device_id: str, labels: dict[str, str]) -> None:
        if labels:
            self._execute(
                sa.insert(t.device_labels),
                [{"device_id": device_id, "key": k, "value": v} for k, v in labels.items()],
            )
        self._known_labels[device_id] = dict(labels)

    def _insert_history(self, device: Device) -> None:
        if device.new_history:
            self._execute(
                sa.insert(t.device_status_changes),
                [
                    {
                        "device_id": device.id,
                        "at": change.at,
                        "from_status": change.from_status.value,
                        "to_status": change.to_status.value,
                        "actor": change.actor,
                        "reason": change.reason,
                        "run_id": change.run_id,
                    }
                    for change in device.new_history
                ],
            )
        device.new_history.clear()


# -- test cases and environments --------------------------------------------------------


def _criterion_json(criterion: Criterion) -> dict[str, Any]:
    return {
        "metric": criterion.metric,
        "condition": criterion.condition.value,
        "threshold": criterion.threshold,
        "unit": criterion.unit,
    }


def _criterion_from(data: dict[str, Any]) -> Criterion:
    return Criterion(
        metric=data["metric"],
        condition=Condition(data["condition"]),
        threshold=float(data["threshold"]),
        unit=data.get("unit", ""),
    )


def _test_case_values(case: TestCase) -> dict[str, Any]:
    return {
        "name": case.name,
        "name_key": case.name_key,
        "description": case.description,
        "criteria": [_criterion_json(c) for c in case.criteria],
        "duration_s": case.duration_s,
        "timeout_s": case.timeout_s,
        "default_parameters": dict(case.default_parameters),
        "tags": list(case.tags),
        "execution": case.execution.as_json(),
        "version": case.version,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
    }


class SqlTestCaseRepository(_SqlRepository):
    __test__ = False

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        # TestCase.version is the content version, bumped by real edits only; an update
        # checks the stored one is still the one read, so two concurrent edits cannot both
        # become "version n+1" with different contents.
        self._read_versions: dict[str, int] = {}

    def add(self, test_case: TestCase) -> None:
        with self._unique_name("test case", "uq_test_cases_name", test_case.name):
            self._execute(
                sa.insert(t.test_cases).values(id=test_case.id, **_test_case_values(test_case))
            )
        self._read_versions[test_case.id] = test_case.version

    def update(self, test_case: TestCase) -> None:
        statement = (
            sa.update(t.test_cases)
            .where(t.test_cases.c.id == test_case.id)
            .values(**_test_case_values(test_case))
        )
        read_version = self._read_versions.get(test_case.id)
        if read_version is not None:
            statement = statement.where(t.test_cases.c.version == read_version)
        with self._unique_name("test case", "uq_test_cases_name", test_case.name):
            result = self._execute(statement)
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"test case {test_case.name} was changed meanwhile; retry")
        self._read_versions[test_case.id] = test_case.version

    def remove(self, test_case: TestCase) -> None:
        self._execute(sa.delete(t.test_cases).where(t.test_cases.c.id == test_case.id))
        self._read_versions.pop(test_case.id, None)

    def get(self, test_case_id: str) -> TestCase | None:
        found = self._select(sa.select(t.test_cases).where(t.test_cases.c.id == test_case_id))
        return found[0] if found else None

    def get_by_name(self, name: str) -> TestCase | None:
        found = self._select(
            sa.select(t.test_cases).where(t.test_cases.c.name_key == name_key(name))
        )
        return found[0] if found else None

    def list(self, where: NameFilter, limit: int, after: tuple | None) -> list[TestCase]:
        statement = sa.select(t.test_cases)
        if where.text:
            statement = statement.where(_contains_text(t.test_cases.c.name, where.text))
        if where.tag:
            statement = statement.where(self._has_tag(where.tag))
        keyset = _after_by_name(t.test_cases, after)
        if keyset is not None:
            statement = statement.where(keyset)
        statement = statement.order_by(t.test_cases.c.name, t.test_cases.c.id).limit(limit)
        return self._select(statement)

    def _has_tag(self, tag: str) -> sa.ColumnElement[bool]:
        if self.dialect == "postgresql":
            # jsonb containment: tags @> '["tag"]'
            return sa.type_coerce(t.test_cases.c.tags, postgresql.JSONB).contains([tag])
        each = sa.func.json_each(t.test_cases.c.tags).table_valued("value").alias("tag")
        return sa.select(each.c.value).where(each.c.value == tag).exists()

    def _select(self, statement: sa.Select[Any]) -> list[TestCase]:
        cases = []
        for row in self._execute(statement):
            cases.append(
                TestCase(
                    id=row.id,
                    name=row.name,
                    criteria=[_criterion_from(c) for c in row.criteria],
                    description=row.description,
                    duration_s=row.duration_s,
                    timeout_s=row.timeout_s,
                    default_parameters=dict(row.default_parameters),
                    tags=list(row.tags),
                    execution=Execution.from_json(row.execution),
                    version=row.version,
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                )
            )
            self._read_versions[row.id] = row.version
        return cases


def _environment_values(environment: Environment) -> dict[str, Any]:
    return {
        "name": environment.name,
        "name_key": environment.name_key,
        "description": environment.description,
        "variables": dict(environment.variables),
        "created_at": environment.created_at,
        "updated_at": environment.updated_at,
    }


class SqlEnvironmentRepository(_SqlRepository):
    def add(self, environment: Environment) -> None:
        with self._unique_name("environment", "uq_environments_name", environment.name):
            self._execute(
                sa.insert(t.environments).values(
                    id=environment.id, **_environment_values(environment)
                )
            )

    def update(self, environment: Environment) -> None:
        statement = (
            sa.update(t.environments)
            .where(t.environments.c.id == environment.id)
            .values(**_environment_values(environment))
        )
        with self._unique_name("environment", "uq_environments_name", environment.name):
            result = self._execute(statement)
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"environment {environment.name} was deleted meanwhile")

    def remove(self, environment: Environment) -> None:
        self._execute(sa.delete(t.environments).where(t.environments.c.id == environment.id))

    def get(self, environment_id: str) -> Environment | None:
        found = self._select(sa.select(t.environments).where(t.environments.c.id == environment_id))
        return found[0] if found else None

    def get_by_name(self, name: str) -> Environment | None:
        found = self._select(
            sa.select(t.environments).where(t.environments.c.name_key == name_key(name))
        )
        return found[0] if found else None

    def list(self, where: NameFilter, limit: int, after: tuple | None) -> list[Environment]:
        statement = sa.select(t.environments)
        if where.text:
            statement = statement.where(_contains_text(t.environments.c.name, where.text))
        keyset = _after_by_name(t.environments, after)
        if keyset is not None:
            statement = statement.where(keyset)
        statement = statement.order_by(t.environments.c.name, t.environments.c.id).limit(limit)
        return self._select(statement)

    def _select(self, statement: sa.Select[Any]) -> list[Environment]:
        return [
            Environment(
                id=row.id,
                name=row.name,
                description=row.description,
                variables=dict(row.variables),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in self._execute(statement)
        ]


# -- test runs -------------------------------------------------------------------------


def _number_json(value: float | None) -> float | str | None:
    """JSON (and PostgreSQL's jsonb) has no NaN or infinity; a runner may still measure one."""
    if value is None or math.isfinite(value):
        return value
    return repr(float(value))  # "nan", "inf", "-inf"


def _number_from(value: float | str | None) -> float | None:
    return None if value is None else float(value)


def _case_snapshot_json(case: TestCaseSnapshot) -> dict[str, Any]:
    return {
        "id": case.id,
        "version": case.version,
        "name": case.name,
        "description": case.description,
        "criteria": [_criterion_json(c) for c in case.criteria],
        "duration_s": case.duration_s,
        "timeout_s": case.timeout_s,
        "parameters": dict(case.parameters),
        "tags": list(case.tags),
        "execution": case.execution.as_json(),
    }


def _case_snapshot_from(data: dict[str, Any]) -> TestCaseSnapshot:
    return TestCaseSnapshot(
        id=data["id"],
        version=data["version"],
        name=data["name"],
        description=data["description"],
        criteria=tuple(_criterion_from(c) for c in data["criteria"]),
        duration_s=data["duration_s"],
        timeout_s=data["timeout_s"],
        parameters=dict(data["parameters"]),
        tags=tuple(data["tags"]),
        # snapshots older than migration 0004 hold none: the runner's default
        execution=Execution.from_json(data.get("execution")),
    )


def _device_snapshot_json(device: DeviceSnapshot) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "model": device.model,
        "serial": device.serial,
        "firmware_version": device.firmware_version,
        "labels": dict(device.labels),
        "role": device.role,
    }


def _device_snapshot_from(data: dict[str, Any]) -> DeviceSnapshot:
    return DeviceSnapshot(
        id=data["id"],
        name=data["name"],
        model=data["model"],
        serial=data["serial"],
        firmware_version=data["firmware_version"],
        labels=dict(data["labels"]),
        role=data.get("role"),  # absent in snapshots from before the queue
    )


def _device_request_json(request: DeviceRequest) -> dict[str, Any]:
    return {
        "role": request.role,
        "model": request.model,
        "labels": dict(request.labels),
        "count": request.count,
    }


def _device_request_from(data: dict[str, Any]) -> DeviceRequest:
    return DeviceRequest(
        role=data.get("role"),
        model=data.get("model"),
        labels=dict(data.get("labels") or {}),
        count=int(data["count"]),
    )


def _environment_snapshot_json(environment: EnvironmentSnapshot) -> dict[str, Any]:
    return {
        "id": environment.id,
        "name": environment.name,
        "description": environment.description,
        "variables": dict(environment.variables),
    }


def _measurement_json(measurement: Measurement) -> dict[str, Any]:
    return {
        "metric": measurement.metric,
        "condition": measurement.condition,
        "threshold": _number_json(measurement.threshold),
        "unit": measurement.unit,
        "value": _number_json(measurement.value),
        "passed": measurement.passed,
    }


def _measurement_from(data: dict[str, Any]) -> Measurement:
    return Measurement(
        metric=data["metric"],
        condition=data["condition"],
        threshold=float(data["threshold"]),
        unit=data["unit"],
        value=_number_from(data["value"]),
        passed=data["passed"],
    )


def _result_row(run_id: str, result: CaseResult) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "test_case_id": result.test_case_id,
        "device_id": result.device_id,
        "verdict": result.verdict.value,
        "measurements": [_measurement_json(m) for m in result.measurements],
        "message": result.message,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
    }


def _run_values(run: TestRun) -> dict[str, Any]:
    return {
        "status": run.status.value,
        "verdict": run.verdict.value if run.verdict is not None else None,
        "environment_id": run.environment.id,
        "environment": _environment_snapshot_json(run.environment),
        "parameters": dict(run.parameters),
        "started_by": run.started_by,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "deadline": run.deadline,
        "failure_reason": run.failure_reason,
        "progress": run.progress,
        "progress_message": run.progress_message,
        "last_report_at": run.last_report_at,
        "runner": run.runner,
        "priority": run.priority.value,
        "requested_device_ids": list(run.requested_device_ids) or None,
        "device_requests": [_device_request_json(r) for r in run.device_requests] or None,
        "queue_timeout_at": run.queue_timeout_at,
    }


def _device_rows(run: TestRun) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run.id,
            "position": position,
            "device_id": device.id,
            "firmware_version": device.firmware_version,
            "snapshot": _device_snapshot_json(device),
            "run_created_at": run.created_at,
            "role": device.role,
        }
        for position, device in enumerate(run.devices)
    ]


def _cursor_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
        # in UTC, as stored; a made-up offset can push it past year 9999 (OverflowError)
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidValue("cursor", "is not a cursor this API issued for this list") from None


class SqlTestRunRepository(_SqlRepository):
    __test__ = False

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        # results as last read or written, so an update writes only the ones that changed
        self._known_results: dict[str, dict[tuple[str, str], CaseResult]] = {}
        # the same for the booked devices: they change once, when a waiting run is booked
        self._known_devices: dict[str, tuple[DeviceSnapshot, ...]] = {}

    def add(self, run: TestRun) -> None:
        self._execute(_INSERT_RUN, {"id": run.id, **_run_values(run), "version": run.version})
        self._execute(
            sa.insert(t.test_run_cases),
            [
                {
                    "run_id": run.id,
                    "position": position,
                    "test_case_id": case.id,
                    "version": case.version,
                    "snapshot": _case_snapshot_json(case),
                }
                for position, case in enumerate(run.test_cases)
            ],
        )
        if run.devices:  # a waiting run has none yet
            self._execute(sa.insert(t.test_run_devices), _device_rows(run))
        self._known_devices[run.id] = run.devices
        self._known_results[run.id] = {}
        self._write_results(run)
        _log_change(self, "run", run.id)

    def update(self, run: TestRun) -> None:
        values = {
            **_run_values(run),
            "version": run.version + 1,
            "match_id": run.id,
            "match_version": run.version,
        }
        if self._execute(_UPDATE_RUN, values).rowcount != 1:
            raise ConcurrentUpdate(f"test run {run.id} was changed meanwhile; retry")
        if self._known_devices.get(run.id) != run.devices:
            devices = t.test_run_devices
            self._execute(sa.delete(devices).where(devices.c.run_id == run.id))
            if run.devices:
                self._execute(sa.insert(devices), _device_rows(run))
            self._known_devices[run.id] = run.devices
        self._write_results(run)
        _log_change(self, "run", run.id)
        run.version += 1

    def get(self, run_id: str, for_update: bool = False) -> TestRun | None:
        statement = sa.select(t.test_runs).where(t.test_runs.c.id == run_id)
        if for_update:
            statement = statement.with_for_update()
        found = self._select(statement)
        return found[0] if found else None

    def list(self, where: RunFilter, limit: int, after: tuple | None) -> list[TestRun]:
        runs = t.test_runs
        statement = sa.select(runs)
        # newest first by (created_at, id); for one device's runs, by the same values on its
        # bookings, whose index yields them in that order (a busy bench has many runs)
        created_at, run_id = runs.c.created_at, runs.c.id
        if where.device_id is not None:
            # an alias: the firmware filter below has its own subquery on the same table
            bookings = t.test_run_devices.alias("bookings")
            statement = statement.join(bookings, bookings.c.run_id == runs.c.id).where(
                bookings.c.device_id == where.device_id
            )
            created_at, run_id = bookings.c.run_created_at, bookings.c.run_id
        if where.status is not None:
            statement = statement.where(runs.c.status == RunStatus(where.status).value)
        if where.verdict is not None:
            statement = statement.where(runs.c.verdict == Verdict(where.verdict).value)
        if where.environment_id is not None:
            statement = statement.where(runs.c.environment_id == where.environment_id)
        if where.firmware is not None:
            statement = statement.where(
                sa.select(t.test_run_devices.c.run_id)
                .where(
                    t.test_run_devices.c.run_id == runs.c.id,
                    t.test_run_devices.c.firmware_version == where.firmware,
                )
                .exists()
            )
        if where.test_case_id is not None:
            statement = statement.where(
                sa.select(t.test_run_cases.c.run_id)
                .where(
                    t.test_run_cases.c.run_id == runs.c.id,
                    t.test_run_cases.c.test_case_id == where.test_case_id,
                )
                .exists()
            )
        if where.created_from is not None:
            statement = statement.where(created_at >= where.created_from)
        if where.created_to is not None:
            statement = statement.where(created_at <= where.created_to)
        if after is not None:
            # The key is (created_at as ISO text, id); compare the instant, not the text.
            after_time, after_id = _cursor_time(after[0]), after[1]
            statement = statement.where(
                # redundant, but an index on (…, created_at) can start its backward scan here;
                # without it a page deep in a million runs read every newer run first (bench/)
                created_at <= after_time,
                sa.or_(
                    created_at < after_time,
                    sa.and_(created_at == after_time, run_id < after_id),
                ),
            )
        statement = statement.order_by(created_at.desc(), run_id.desc()).limit(limit)
        return self._select(statement)

    def list_overdue(self, now: datetime, limit: int) -> list[str]:
        # a waiting run's deadline starts when it is booked; its queue timeout is apart
        unfinished = [s.value for s in RunStatus if not s.finished and s is not RunStatus.WAITING]
        rows = self._execute(
            sa.select(t.test_runs.c.id)
            .where(t.test_runs.c.status.in_(unfinished), t.test_runs.c.deadline < now)
            .order_by(t.test_runs.c.deadline, t.test_runs.c.id)
            .limit(limit)
        )
        return [row.id for row in rows]

    def list_waiting(self) -> list[TestRun]:
        runs = t.test_runs
        waiting = self._select(
            sa.select(runs)
            .where(runs.c.status == RunStatus.WAITING.value)
            .order_by(runs.c.created_at, runs.c.id)
        )
        # priority first; within one priority the index's order, first come first served
        return sorted(waiting, key=lambda r: -r.priority.rank)

    def lock_queue(self) -> None:
        """PostgreSQL: a transaction-scoped advisory lock, so passes in any process take
        turns (taking it twice in one transaction is fine). SQLite: the transaction already
        holds the database's write lock (BEGIN IMMEDIATE, engine.py); a statement makes
        sure it has begun."""
        if self.session.get_bind().dialect.name == "postgresql":
            self._execute(sa.select(sa.func.pg_advisory_xact_lock(_QUEUE_LOCK_KEY)))
        else:
            self._execute(sa.select(sa.literal(1)))

    def _write_results(self, run: TestRun) -> None:
        known = self._known_results.get(run.id)
        if known is None:
            # not read through this repository: rewrite them all
            self._execute(
                sa.delete(t.test_run_results).where(t.test_run_results.c.run_id == run.id)
            )
            known = {}
        results = t.test_run_results
        stale = [key for key, result in known.items() if run.results.get(key) != result]
        for test_case_id, device_id in stale:
            self._execute(
                sa.delete(results).where(
                    results.c.run_id == run.id,
                    results.c.test_case_id == test_case_id,
                    results.c.device_id == device_id,
                )
            )
        fresh = [result for key, result in run.results.items() if known.get(key) != result]
        if fresh:
            self._execute(sa.insert(results), [_result_row(run.id, r) for r in fresh])
        self._known_results[run.id] = dict(run.results)

    def _select(self, statement: sa.Select[Any]) -> list[TestRun]:
        rows = self._execute(statement).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        cases: dict[str, list[TestCaseSnapshot]] = {i: [] for i in ids}
        devices: dict[str, list[DeviceSnapshot]] = {i: [] for i in ids}
        results: dict[str, dict[tuple[str, str], CaseResult]] = {i: {} for i in ids}
        for part in self._execute(_RUN_PARTS, {"run_ids": ids}):
            if part.part == _CASE:
                cases[part.run_id].append(_case_snapshot_from(part.document))
            elif part.part == _DEVICE:
                devices[part.run_id].append(_device_snapshot_from(part.document))
            else:
                results[part.run_id][(part.test_case_id, part.device_id)] = CaseResult(
                    test_case_id=part.test_case_id,
                    device_id=part.device_id,
                    verdict=Verdict(part.verdict),
                    measurements=tuple(_measurement_from(m) for m in part.document),
                    message=part.message,
                    started_at=part.started_at,
                    finished_at=part.finished_at,
                )
        loaded = []
        for row in rows:
            environment = row.environment
            loaded.append(
                TestRun(
                    id=row.id,
                    test_cases=tuple(cases[row.id]),
                    environment=EnvironmentSnapshot(
                        id=environment["id"],
                        name=environment["name"],
                        description=environment["description"],
                        variables=dict(environment["variables"]),
                    ),
                    devices=tuple(devices[row.id]),
                    started_by=row.started_by,
                    created_at=row.created_at,
                    deadline=row.deadline,
                    parameters=dict(row.parameters),
                    status=RunStatus(row.status),
                    verdict=Verdict(row.verdict) if row.verdict is not None else None,
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    failure_reason=row.failure_reason,
                    progress=row.progress,
                    progress_message=row.progress_message,
                    last_report_at=row.last_report_at,
                    runner=row.runner,
                    results=results[row.id],
                    version=row.version,
                    priority=Priority(row.priority),
                    requested_device_ids=tuple(row.requested_device_ids or ()),
                    device_requests=tuple(
                        _device_request_from(r) for r in row.device_requests or ()
                    ),
                    queue_timeout_at=row.queue_timeout_at,
                )
            )
            self._known_results[row.id] = dict(results[row.id])
            self._known_devices[row.id] = tuple(devices[row.id])
        return loaded


_CASE, _DEVICE, _RESULT = 1, 2, 3


def _run_parts() -> sa.CompoundSelect:
    """The cases, devices and results of the runs in `:run_ids` in one query (one round
    trip, not three): a UNION ALL of the three tables on common columns, each row tagged
    with its part, in run and then list order. Built once (`_RUN_PARTS`)."""
    run_ids = sa.bindparam("run_ids", expanding=True)
    cases, devices, results = t.test_run_cases.c, t.test_run_devices.c, t.test_run_results.c

    def nothing(kind: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
        return sa.cast(sa.null(), kind)

    def snapshot_rows(table: Any, part: int) -> sa.Select[Any]:
        return sa.select(
            table.run_id,
            sa.literal(part, sa.Integer()).label("part"),
            table.position,
            table.snapshot.label("document"),
            nothing(sa.String()).label("test_case_id"),
            nothing(sa.String()).label("device_id"),
            nothing(sa.String()).label("verdict"),
            nothing(sa.Text()).label("message"),
            nothing(UtcDateTime()).label("started_at"),
            nothing(UtcDateTime()).label("finished_at"),
        ).where(table.run_id.in_(run_ids))

    result_rows = sa.select(
        results.run_id,
        sa.literal(_RESULT, sa.Integer()).label("part"),
        sa.literal(0, sa.Integer()).label("position"),
        results.measurements.label("document"),
        results.test_case_id,
        results.device_id,
        results.verdict,
        results.message,
        results.started_at,
        results.finished_at,
    ).where(results.run_id.in_(run_ids))
    return sa.union_all(
        snapshot_rows(cases, _CASE), snapshot_rows(devices, _DEVICE), result_rows
    ).order_by("run_id", "part", "position", "test_case_id", "device_id")


_RUN_PARTS = _run_parts()


# -- outbox ----------------------------------------------------------------------------


class SqlOutbox(_SqlRepository):
    """Messages for the runners, stored in the transaction of the change they announce; a
    relay publishes the unsent ones (sent_at IS NULL) afterwards."""

    def add(self, message: OutboxMessage) -> None:
        self._execute(
            _INSERT_OUTBOX,
            {
                "id": message.id,
                "kind": message.kind,
                "run_id": message.run_id,
                "payload": message.payload,
                "created_at": message.created_at,
                "attempts": 0,
            },
        )

    def claim(self, now: datetime, until: datetime, limit: int) -> list[OutboxMessage]:
        box = t.outbox
        statement = (
            sa.select(box.c.id, box.c.kind, box.c.run_id, box.c.payload, box.c.created_at)
            .where(
                box.c.sent_at.is_(None),
                sa.or_(box.c.claimed_until.is_(None), box.c.claimed_until < now),
            )
            .order_by(box.c.created_at, box.c.id)
            .limit(limit)
            # concurrent relays on PostgreSQL skip each other's rows instead of waiting
            .with_for_update(skip_locked=True)
        )
        rows = self._execute(statement).all()
        if rows:
            self._execute(
                sa.update(box).where(box.c.id.in_([r.id for r in rows])).values(claimed_until=until)
            )
        return [OutboxMessage(r.id, r.kind, r.run_id, r.payload, r.created_at) for r in rows]

    def mark_sent(self, sent: Sequence[tuple[str, datetime]]) -> None:
        if sent:  # one executemany: a single round trip per page on PostgreSQL (engine.py)
            self._execute(_MARK_SENT, [{"match_id": i, "at": at} for i, at in sent])

    def release_claim(self, message_id: str) -> None:
        self._execute(
            sa.update(t.outbox)
            .where(t.outbox.c.id == message_id)
            .values(claimed_until=None, attempts=t.outbox.c.attempts + 1)
        )

    def purge_sent(self, before: datetime) -> int:
        result = self._execute(
            sa.delete(t.outbox).where(t.outbox.c.sent_at.is_not(None), t.outbox.c.sent_at < before)
        )
        return result.rowcount


# -- change log ------------------------------------------------------------------------


PENDING_CHANGES = "devicelab.pending_changes"


def _log_change(
    repository: _SqlRepository, kind: str, entity_id: str, deleted: bool = False
) -> None:
    """Note a change for the change log; `write_logged_changes` writes the transaction's
    notes in one statement just before it commits (one round trip, not one per entity)."""
    repository.session.info.setdefault(PENDING_CHANGES, []).append(
        {"kind": kind, "entity_id": entity_id, "deleted": deleted, "at": datetime.now(UTC)}
    )


def write_logged_changes(session: Session) -> None:
    pending = session.info.pop(PENDING_CHANGES, None)
    if pending:
        session.execute(t.change_log.insert(), pending)


def forget_logged_changes(session: Session) -> None:
    session.info.pop(PENDING_CHANGES, None)


class SqlChangeFeed(_SqlRepository):
    """The change log in id order. Ids are assigned at insert, and a transaction that
    commits late can hold a smaller id than one already read; readers therefore re-read a
    short window behind their position (see `since`)."""

    def since(self, after_id: int, limit: int) -> list[Change]:
        log = t.change_log
        rows = self._execute(
            sa.select(log).where(log.c.id > after_id).order_by(log.c.id).limit(limit)
        ).all()
        return [Change(r.id, r.kind, r.entity_id, r.at, r.deleted) for r in rows]

    def latest_id(self) -> int:
        return self._execute(sa.select(sa.func.max(t.change_log.c.id))).scalar() or 0

    def purge(self, before: datetime) -> int:
        return self._execute(sa.delete(t.change_log).where(t.change_log.c.at < before)).rowcount


# -- live stream leases ----------------------------------------------------------------

_SLOT_KEY = "uq_stream_leases_user_id_slot"


class SqlStreamLeases(_SqlRepository):
    def of_user(self, user_id: str) -> list[StreamLease]:
        leases = t.stream_leases
        rows = self._execute(
            sa.select(leases).where(leases.c.user_id == user_id).order_by(leases.c.slot)
        ).all()
        return [StreamLease(r.id, r.user_id, r.slot, r.expires_at) for r in rows]

    def add(self, lease: StreamLease) -> None:
        values = {
            "id": lease.id,
            "user_id": lease.user_id,
            "slot": lease.slot,
            "expires_at": lease.expires_at,
        }
        try:
            self._execute(t.stream_leases.insert().values(**values))
        except IntegrityError as error:
            diag = getattr(error.orig, "diag", None)
            constraint = getattr(diag, "constraint_name", None) if diag is not None else None
            taken = (
                constraint == _SLOT_KEY
                if constraint
                else "stream_leases.user_id, stream_leases.slot" in str(error.orig)
            )
            if taken:
                raise ConcurrentUpdate(
                    f"stream slot {lease.slot} of the user was taken meanwhile"
                ) from error
            raise

    def renew(self, lease_id: str, expires_at: datetime) -> bool:
        leases = t.stream_leases
        result = self._execute(
            leases.update().where(leases.c.id == lease_id).values(expires_at=expires_at)
        )
        return result.rowcount == 1

    def remove(self, lease_id: str) -> None:
        self._execute(sa.delete(t.stream_leases).where(t.stream_leases.c.id == lease_id))

    def remove_expired(self, now: datetime) -> int:
        leases = t.stream_leases
        return self._execute(sa.delete(leases).where(leases.c.expires_at <= now)).rowcount


# -- statistics ------------------------------------------------------------------------


class SqlStatistics(_SqlRepository):
    def lab_statistics(self, since: datetime, top: int) -> LabStatistics:
        devices, runs, results = t.devices, t.test_runs, t.test_run_results
        by_status = dict(
            self._execute(
                sa.select(devices.c.status, sa.func.count()).group_by(devices.c.status)
            ).all()
        )
        runs_by_status = dict(
            self._execute(sa.select(runs.c.status, sa.func.count()).group_by(runs.c.status)).all()
        )
        finished = self._execute(
            sa.select(runs.c.finished_at, runs.c.verdict).where(
                runs.c.status == RunStatus.COMPLETED.value, runs.c.finished_at >= since
            )
        ).all()
        per_day: dict[tuple[str, str], int] = {}
        for finished_at, verdict in finished:
            key = (finished_at.astimezone(UTC).date().isoformat(), verdict)
            per_day[key] = per_day.get(key, 0) + 1
        failing = self._execute(
            sa.select(
                results.c.test_case_id,
                sa.func.count(sa.distinct(results.c.run_id)).label("failures"),
            )
            .join(runs, runs.c.id == results.c.run_id)
            .where(results.c.verdict == Verdict.FAIL.value, runs.c.finished_at >= since)
            .group_by(results.c.test_case_id)
            .order_by(sa.desc("failures"), results.c.test_case_id)
            .limit(top)
        ).all()
        most_failing = []
        for case_id, failures in failing:
            cases = t.test_run_cases
            run_count = self._execute(
                sa.select(sa.func.count())
                .select_from(cases.join(runs, runs.c.id == cases.c.run_id))
                .where(cases.c.test_case_id == case_id, runs.c.finished_at >= since)
            ).scalar()
            name = self._execute(
                sa.select(cases.c.snapshot)
                .where(cases.c.test_case_id == case_id)
                .order_by(cases.c.version.desc())
                .limit(1)
            ).scalar()
            most_failing.append((case_id, name["name"] if name else case_id, failures, run_count))
        return LabStatistics(
            devices_by_status={s.value: by_status.get(s.value, 0) for s in DeviceStatus},
            runs_by_status={s.value: runs_by_status.get(s.value, 0) for s in RunStatus},
            verdicts_by_day=sorted((day, verdict, n) for (day, verdict), n in per_day.items()),
            most_failing_test_cases=most_failing,
        )
