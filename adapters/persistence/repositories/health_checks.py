"""Health-check designations in SQL, and which devices have a health check under way."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository
from application.errors import ConcurrentUpdate
from domain.health_checks import HealthCheck
from domain.test_runs import RunPurpose, RunStatus

_UNDER_WAY = [RunStatus.WAITING.value, RunStatus.QUEUED.value, RunStatus.RUNNING.value]


def _values(check: HealthCheck) -> dict[str, Any]:
    return {
        "name": check.name,
        "test_case_id": check.test_case_id,
        "environment_id": check.environment_id,
        "model": check.model,
        "labels": dict(check.labels),
        "every_hours": check.every_hours,
        "every_runs": check.every_runs,
        "after_service": check.after_service,
        "created_at": check.created_at,
        "updated_at": check.updated_at,
    }


def _check(row: Any) -> HealthCheck:
    return HealthCheck(
        id=row.id,
        name=row.name,
        test_case_id=row.test_case_id,
        environment_id=row.environment_id,
        model=row.model,
        labels=dict(row.labels),
        every_hours=row.every_hours,
        every_runs=row.every_runs,
        after_service=bool(row.after_service),
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


class SqlHealthChecks(SqlRepository):
    def add(self, check: HealthCheck) -> None:
        values = {"id": check.id, **_values(check), "version": check.version + 1}
        self._execute(sa.insert(t.health_checks).values(values))
        check.version += 1

    def update(self, check: HealthCheck) -> None:
        table = t.health_checks
        result = self._execute(
            table.update()
            .where(table.c.id == check.id, table.c.version == check.version)
            .values(**_values(check), version=check.version + 1)
        )
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"health check {check.name} was changed meanwhile; retry")
        check.version += 1

    def remove(self, check: HealthCheck) -> None:
        self._execute(sa.delete(t.health_checks).where(t.health_checks.c.id == check.id))

    def get(self, check_id: str) -> HealthCheck | None:
        row = self._execute(
            sa.select(t.health_checks).where(t.health_checks.c.id == check_id)
        ).first()
        return _check(row) if row is not None else None

    def list(self) -> list[HealthCheck]:
        table = t.health_checks
        rows = self._execute(sa.select(table).order_by(table.c.name, table.c.id))
        return [_check(row) for row in rows]

    def checking_device_ids(self) -> set[str]:
        runs, booked = t.test_runs, t.test_run_devices
        under_way = sa.and_(
            runs.c.purpose == RunPurpose.HEALTH_CHECK.value, runs.c.status.in_(_UNDER_WAY)
        )
        found: set[str] = set()
        # a waiting run names its device in requested_device_ids; a booked one has its row
        for (named,) in self._execute(
            sa.select(runs.c.requested_device_ids).where(
                under_way, runs.c.status == RunStatus.WAITING.value
            )
        ):
            found.update(named or ())
        found.update(
            self._execute(
                sa.select(booked.c.device_id)
                .join(runs, runs.c.id == booked.c.run_id)
                .where(under_way)
            ).scalars()
        )
        return found
