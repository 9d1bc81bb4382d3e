"""The test run aggregate in SQL: runs, the snapshots they were started with, and their results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import (
    SqlRepository,
    cursor_time,
    number_from,
    number_json,
)
from adapters.persistence.repositories.change_feed import (
    log_change,
    log_queue_change,
    note_queue_membership,
)
from adapters.persistence.repositories.test_cases import criterion_from, criterion_json
from adapters.persistence.tables import UtcDateTime
from application.errors import ConcurrentUpdate
from application.ports import RunFilter
from domain.environments import EnvironmentSnapshot
from domain.execution import Execution
from domain.scheduling import DeviceRequest, Priority
from domain.test_cases import TestCaseSnapshot
from domain.test_runs import (
    CaseResult,
    DeviceSnapshot,
    Measurement,
    RunPurpose,
    RunStatus,
    TestRun,
    Verdict,
)

_INSERT_RUN = t.test_runs.insert()


# the key of the queue's advisory lock on PostgreSQL: any fixed number no other lock uses
_QUEUE_LOCK_KEY = 0x64657669_63656C61  # "devicela"


_UPDATE_RUN = t.test_runs.update().where(
    t.test_runs.c.id == sa.bindparam("match_id"),
    t.test_runs.c.version == sa.bindparam("match_version"),
)

# an estimate is no change of the run: no version bump, so that a cancel (or a booking) that
# read the run before it never fails on it; and only while the run waits, so that an estimate
# computed before the run left the queue is dropped (on PostgreSQL the WHERE is re-checked on
# the row a concurrent commit left)
_SET_ESTIMATE = (
    t.test_runs.update()
    .where(
        t.test_runs.c.id == sa.bindparam("match_id"),
        t.test_runs.c.status == RunStatus.WAITING.value,
    )
    .values(estimated_start_at=sa.bindparam("estimate"))
)
_BOOKED = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


def _case_snapshot_json(case: TestCaseSnapshot) -> dict[str, Any]:
    return {
        "id": case.id,
        "version": case.version,
        "name": case.name,
        "description": case.description,
        "criteria": [criterion_json(c) for c in case.criteria],
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
        criteria=tuple(criterion_from(c) for c in data["criteria"]),
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


def device_request_json(request: DeviceRequest) -> dict[str, Any]:
    return {
        "role": request.role,
        "model": request.model,
        "labels": dict(request.labels),
        "count": request.count,
    }


def device_request_from(data: dict[str, Any]) -> DeviceRequest:
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
    data = {
        "metric": measurement.metric,
        "condition": measurement.condition,
        "threshold": number_json(measurement.threshold),
        "unit": measurement.unit,
        "value": number_json(measurement.value),
        "passed": measurement.passed,
        "marginal": measurement.marginal,
        "reason": measurement.reason,
        "of": measurement.of,
        "expected": measurement.expected,
    }
    if measurement.samples:
        data["samples"] = [[t, v] for t, v in measurement.samples]
    return data


def _measurement_from(data: dict[str, Any]) -> Measurement:
    """Measurements stored before marginal bands and samples load with their defaults."""
    threshold = number_from(data.get("threshold"))
    return Measurement(
        metric=data["metric"],
        condition=data["condition"],
        threshold=None if threshold is None else float(threshold),
        unit=data["unit"],
        value=number_from(data["value"]),
        passed=data["passed"],
        marginal=bool(data.get("marginal", False)),
        reason=data.get("reason") or "",
        of=data.get("of") or "final",
        expected=data.get("expected") or "",
        samples=tuple((float(t), float(v)) for t, v in data.get("samples") or ()),
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
        "reoffers": run.reoffers,
        "reoffered_at": run.reoffered_at,
        "priority": run.priority.value,
        "requested_device_ids": list(run.requested_device_ids) or None,
        "device_requests": [device_request_json(r) for r in run.device_requests] or None,
        "queue_timeout_at": run.queue_timeout_at,
        "purpose": run.purpose.value,
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


class SqlTestRunRepository(SqlRepository):
    __test__ = False

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        # results as last read or written, so an update writes only the ones that changed
        self._known_results: dict[str, dict[tuple[str, str], CaseResult]] = {}
        # the same for the booked devices: they change once, when a waiting run is booked
        self._known_devices: dict[str, tuple[DeviceSnapshot, ...]] = {}
        # whether each run was waiting as last read or written: leaving the queue changes it
        self._known_waiting: dict[str, bool] = {}

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
        log_change(self, "run", run.id)
        self._note_queue(run, added=True)

    def update(self, run: TestRun) -> None:
        values = {
            **_run_values(run),
            "version": run.version + 1,
            "match_id": run.id,
            "match_version": run.version,
        }
        if not run.waiting:
            # a waiting run's estimate is the worker's to write; the one loaded may be stale
            values["estimated_start_at"] = None
        if self._execute(_UPDATE_RUN, values).rowcount != 1:
            raise ConcurrentUpdate(f"test run {run.id} was changed meanwhile; retry")
        if self._known_devices.get(run.id) != run.devices:
            devices = t.test_run_devices
            self._execute(sa.delete(devices).where(devices.c.run_id == run.id))
            if run.devices:
                self._execute(sa.insert(devices), _device_rows(run))
            self._known_devices[run.id] = run.devices
        self._write_results(run)
        log_change(self, "run", run.id)
        self._note_queue(run)
        run.version += 1

    def _note_queue(self, run: TestRun, added: bool = False) -> None:
        """A run that enters or leaves the queue changes the queue (a run not read here
        counts as changed)."""
        before = False if added else self._known_waiting.get(run.id, not run.waiting)
        note_queue_membership(self, f"run:{run.id}", before, run.waiting)
        self._known_waiting[run.id] = run.waiting

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
        if where.purpose is not None:
            statement = statement.where(runs.c.purpose == RunPurpose(where.purpose).value)
        if where.environment_id is not None:
            statement = statement.where(runs.c.environment_id == where.environment_id)
        if where.runner is not None:
            statement = statement.where(runs.c.runner == where.runner)
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
            after_time, after_id = cursor_time(after[0]), after[1]
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

    def list_silent_claims(
        self, heard_before: datetime, max_reoffers: int, limit: int
    ) -> list[str]:
        # few runs are running at a time (at most one per device): the status index suffices
        runs = t.test_runs
        last_heard = sa.func.coalesce(runs.c.last_report_at, runs.c.started_at)
        rows = self._execute(
            sa.select(runs.c.id)
            .where(
                runs.c.status == RunStatus.RUNNING.value,
                runs.c.runner != "",
                runs.c.reoffers < max_reoffers,
                last_heard < heard_before,
                sa.or_(runs.c.reoffered_at.is_(None), runs.c.reoffered_at < heard_before),
            )
            .order_by(last_heard, runs.c.id)
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

    def list_booked(self) -> list[TestRun]:
        runs = t.test_runs
        return self._select(
            sa.select(runs).where(runs.c.status.in_(_BOOKED)).order_by(runs.c.created_at, runs.c.id)
        )

    def measured_case_durations(self, case_ids: Sequence[str], last: int) -> dict[str, list[float]]:
        if not case_ids:
            return {}
        cases, runs, results = t.test_run_cases, t.test_runs, t.test_run_results
        # one row per (case, completed run): the case's first start and last finish there
        spans = (
            sa.select(
                cases.c.test_case_id,
                runs.c.finished_at,
                sa.func.min(results.c.started_at).label("began"),
                sa.func.max(results.c.finished_at).label("ended"),
            )
            .select_from(
                cases.join(runs, runs.c.id == cases.c.run_id).join(
                    results,
                    sa.and_(
                        results.c.run_id == cases.c.run_id,
                        results.c.test_case_id == cases.c.test_case_id,
                    ),
                )
            )
            .where(
                cases.c.test_case_id.in_(sorted(set(case_ids))),
                runs.c.status == RunStatus.COMPLETED.value,
                results.c.started_at.is_not(None),
                results.c.finished_at.is_not(None),
            )
            .group_by(cases.c.test_case_id, runs.c.id, runs.c.finished_at)
            .subquery()
        )
        newest = (
            sa.func.row_number()
            .over(
                partition_by=spans.c.test_case_id,
                order_by=spans.c.finished_at.desc(),
            )
            .label("newest")
        )
        ranked = sa.select(spans, newest).subquery()
        rows = self._execute(
            sa.select(ranked.c.test_case_id, ranked.c.began, ranked.c.ended)
            .where(ranked.c.newest <= last)
            .order_by(ranked.c.test_case_id, ranked.c.newest)
        )
        measured: dict[str, list[float]] = {}
        for row in rows:
            seconds = (row.ended - row.began).total_seconds()
            measured.setdefault(row.test_case_id, []).append(max(0.0, seconds))
        return measured

    def set_estimated_starts(self, estimates: Mapping[str, datetime | None]) -> None:
        if not estimates:
            return
        # in id order, so that two writers lock the rows in the same order
        self._execute(
            _SET_ESTIMATE,
            [{"match_id": i, "estimate": at} for i, at in sorted(estimates.items())],
        )
        log_queue_change(self)

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
                    reoffers=row.reoffers,
                    reoffered_at=row.reoffered_at,
                    results=results[row.id],
                    version=row.version,
                    priority=Priority(row.priority),
                    requested_device_ids=tuple(row.requested_device_ids or ()),
                    device_requests=tuple(
                        device_request_from(r) for r in row.device_requests or ()
                    ),
                    queue_timeout_at=row.queue_timeout_at,
                    estimated_start_at=row.estimated_start_at,
                    purpose=RunPurpose(row.purpose),
                )
            )
            self._known_waiting[row.id] = row.status == RunStatus.WAITING.value
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
