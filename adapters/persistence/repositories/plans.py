"""Test plans, plan runs and firmware sightings in SQL.

A plan's definition and a plan run's plan snapshot are JSON documents in the same shape
(`_definition_json`), so a snapshot reads back as the plan read then. The unique key of plan
runs (plan, cause key) is what makes a trigger fire once across processes: an insert that
breaks it is AlreadyExists, as in the in-memory twin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import (
    SqlRepository,
    after_by_name,
    contains_text,
    cursor_time,
    violates,
)
from adapters.persistence.repositories.test_runs import device_request_from, device_request_json
from application.errors import AlreadyExists, ConcurrentUpdate
from application.plan_ports import FirmwareSighting
from domain.names import name_key
from domain.plans import (
    Cause,
    CauseKind,
    PlanRun,
    PlanRunEntry,
    PlanSnapshot,
    TestPlan,
    Trigger,
)
from domain.scheduling import Priority
from domain.test_runs import Verdict


def _trigger_json(trigger: Trigger) -> dict[str, Any]:
    return {"kind": trigger.kind.value, "cron": trigger.cron, "timezone": trigger.timezone}


def _definition_json(plan: TestPlan | PlanSnapshot) -> dict[str, Any]:
    return {
        "test_case_ids": list(plan.test_case_ids),
        "environment_ids": list(plan.environment_ids),
        "device_ids": list(plan.device_ids),
        "device_requests": [device_request_json(r) for r in plan.device_requests],
        "models": list(plan.models),
        "parameters": dict(plan.parameters),
        "priority": plan.priority.value,
        "triggers": [_trigger_json(tr) for tr in plan.triggers],
    }


def _definition(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "test_case_ids": list(data["test_case_ids"]),
        "environment_ids": list(data["environment_ids"]),
        "device_ids": list(data["device_ids"]),
        "device_requests": [device_request_from(r) for r in data["device_requests"]],
        "models": list(data["models"]),
        "parameters": dict(data["parameters"]),
        "priority": Priority(data["priority"]),
        "triggers": [Trigger(**tr) for tr in data["triggers"]],
    }


def _snapshot_json(plan: PlanSnapshot) -> dict[str, Any]:
    return {"id": plan.id, "version": plan.version, "name": plan.name, **_definition_json(plan)}


def _snapshot(data: dict[str, Any]) -> PlanSnapshot:
    fields = _definition(data)
    return PlanSnapshot(
        id=data["id"],
        version=data["version"],
        name=data["name"],
        **{
            key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()
        },
    )


def _cause_json(cause: Cause) -> dict[str, Any]:
    return {
        "kind": cause.kind.value,
        "by": cause.by,
        "slot": cause.slot.isoformat() if cause.slot else None,
        "device_id": cause.device_id,
        "firmware_version": cause.firmware_version,
    }


def _cause(data: dict[str, Any]) -> Cause:
    return Cause(
        kind=CauseKind(data["kind"]),
        by=data.get("by", ""),
        slot=datetime.fromisoformat(data["slot"]) if data.get("slot") else None,
        device_id=data.get("device_id", ""),
        firmware_version=data.get("firmware_version", ""),
    )


def _violates_cause_key(error: IntegrityError) -> bool:
    return violates(
        error, ("uq_plan_runs_plan_id_cause_key",), "plan_runs.plan_id, plan_runs.cause_key"
    )


class SqlPlanRepository(SqlRepository):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._read_versions: dict[str, int] = {}  # as for test cases: concurrent edits clash

    def _values(self, plan: TestPlan) -> dict[str, Any]:
        return {
            "name": plan.name,
            "name_key": plan.name_key,
            "definition": _definition_json(plan),
            "triggered": bool(plan.triggers),
            "version": plan.version,
            "created_at": plan.created_at,
            "updated_at": plan.updated_at,
            "cron_checked_at": plan.cron_checked_at,
        }

    def add(self, plan: TestPlan) -> None:
        with self._unique_name("plan", "uq_test_plans_name", plan.name):
            self._execute(sa.insert(t.test_plans).values(id=plan.id, **self._values(plan)))
        self._read_versions[plan.id] = plan.version

    def update(self, plan: TestPlan) -> None:
        statement = (
            sa.update(t.test_plans).where(t.test_plans.c.id == plan.id).values(**self._values(plan))
        )
        read = self._read_versions.get(plan.id)
        if read is not None:
            statement = statement.where(t.test_plans.c.version == read)
        with self._unique_name("plan", "uq_test_plans_name", plan.name):
            result = self._execute(statement)
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"plan {plan.name} was changed meanwhile; retry")
        self._read_versions[plan.id] = plan.version

    def remove(self, plan: TestPlan) -> None:
        self._execute(sa.delete(t.test_plans).where(t.test_plans.c.id == plan.id))
        self._read_versions.pop(plan.id, None)

    def get(self, plan_id: str, for_update: bool = False) -> TestPlan | None:
        statement = sa.select(t.test_plans).where(t.test_plans.c.id == plan_id)
        if for_update and self.dialect == "postgresql":
            statement = statement.with_for_update()
        found = self._select(statement)
        return found[0] if found else None

    def get_by_name(self, name: str) -> TestPlan | None:
        found = self._select(
            sa.select(t.test_plans).where(t.test_plans.c.name_key == name_key(name))
        )
        return found[0] if found else None

    def list(self, text: str | None, limit: int, after: tuple | None) -> list[TestPlan]:
        statement = sa.select(t.test_plans)
        if text:
            statement = statement.where(contains_text(t.test_plans.c.name, text))
        keyset = after_by_name(t.test_plans, after)
        if keyset is not None:
            statement = statement.where(keyset)
        return self._select(statement.order_by(t.test_plans.c.name, t.test_plans.c.id).limit(limit))

    def list_triggered(self) -> list[TestPlan]:
        return self._select(
            sa.select(t.test_plans)
            .where(t.test_plans.c.triggered.is_(True))
            .order_by(t.test_plans.c.id)
        )

    def _select(self, statement: sa.Select[Any]) -> list[TestPlan]:
        plans = []
        for row in self._execute(statement):
            plans.append(
                TestPlan(
                    id=row.id,
                    name=row.name,
                    **_definition(row.definition),
                    version=row.version,
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                    cron_checked_at=row.cron_checked_at,
                )
            )
            self._read_versions[row.id] = row.version
        return plans


class SqlPlanRunRepository(SqlRepository):
    def _values(self, plan_run: PlanRun) -> dict[str, Any]:
        return {
            "plan_id": plan_run.plan_id,
            "plan": _snapshot_json(plan_run.plan),
            "cause": _cause_json(plan_run.cause),
            "cause_key": plan_run.cause.debounce_key,
            "runs": [
                {
                    "run_id": e.run_id,
                    "environment_id": e.environment_id,
                    "environment_name": e.environment_name,
                    "model": e.model,
                }
                for e in plan_run.runs
            ],
            "skipped": list(plan_run.skipped),
            "created_at": plan_run.created_at,
            "finished_at": plan_run.finished_at,
            "verdict": plan_run.verdict.value if plan_run.verdict else None,
        }

    def add(self, plan_run: PlanRun) -> None:
        # a savepoint: a clash leaves the rest of the transaction usable on PostgreSQL
        try:
            with self.session.begin_nested():
                self._execute(
                    sa.insert(t.plan_runs).values(id=plan_run.id, **self._values(plan_run))
                )
        except IntegrityError as error:
            if _violates_cause_key(error):
                raise AlreadyExists(
                    "plan run", "cause", plan_run.cause.debounce_key or ""
                ) from error
            raise

    def update(self, plan_run: PlanRun) -> None:
        self._execute(
            sa.update(t.plan_runs)
            .where(t.plan_runs.c.id == plan_run.id)
            .values(**self._values(plan_run))
        )

    def get(self, plan_run_id: str) -> PlanRun | None:
        found = self._select(sa.select(t.plan_runs).where(t.plan_runs.c.id == plan_run_id))
        return found[0] if found else None

    def has_cause(self, plan_id: str, debounce_key: str) -> bool:
        statement = sa.select(sa.literal(1)).where(
            t.plan_runs.c.plan_id == plan_id, t.plan_runs.c.cause_key == debounce_key
        )
        return self._execute(statement).first() is not None

    def list(self, plan_id: str | None, limit: int, after: tuple | None) -> list[PlanRun]:
        statement = sa.select(t.plan_runs)
        if plan_id is not None:
            statement = statement.where(t.plan_runs.c.plan_id == plan_id)
        if after is not None:
            created, run_id = after
            moment = cursor_time(created)
            statement = statement.where(
                t.plan_runs.c.created_at <= moment,
                sa.or_(
                    t.plan_runs.c.created_at < moment,
                    sa.and_(t.plan_runs.c.created_at == moment, t.plan_runs.c.id < run_id),
                ),
            )
        statement = statement.order_by(
            t.plan_runs.c.created_at.desc(), t.plan_runs.c.id.desc()
        ).limit(limit)
        return self._select(statement)

    def list_unfinished(self, limit: int) -> list[PlanRun]:
        return self._select(
            sa.select(t.plan_runs)
            .where(t.plan_runs.c.finished_at.is_(None))
            .order_by(t.plan_runs.c.created_at, t.plan_runs.c.id)
            .limit(limit)
        )

    def _select(self, statement: sa.Select[Any]) -> list[PlanRun]:
        return [
            PlanRun(
                id=row.id,
                plan=_snapshot(row.plan),
                cause=_cause(row.cause),
                runs=tuple(PlanRunEntry(**e) for e in row.runs),
                created_at=row.created_at,
                finished_at=row.finished_at,
                verdict=Verdict(row.verdict) if row.verdict else None,
                skipped=tuple(row.skipped),
            )
            for row in self._execute(statement)
        ]


class SqlFirmwareSightings(SqlRepository):
    def add(self, sighting: FirmwareSighting) -> None:
        self._execute(
            sa.insert(t.firmware_sightings).values(
                id=sighting.id,
                device_id=sighting.device_id,
                firmware_version=sighting.firmware_version,
                seen_at=sighting.seen_at,
            )
        )

    def pending(self, limit: int) -> list[FirmwareSighting]:
        rows = self._execute(
            sa.select(t.firmware_sightings)
            .where(t.firmware_sightings.c.done_at.is_(None))
            .order_by(t.firmware_sightings.c.seen_at, t.firmware_sightings.c.id)
            .limit(limit)
        )
        return [
            FirmwareSighting(row.id, row.device_id, row.firmware_version, row.seen_at)
            for row in rows
        ]

    def mark_done(self, sighting_ids: list[str], at: datetime) -> None:
        if sighting_ids:
            self._execute(
                sa.update(t.firmware_sightings)
                .where(t.firmware_sightings.c.id.in_(sighting_ids))
                .values(done_at=at)
            )
