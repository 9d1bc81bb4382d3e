"""The runner registry on SQL; a runner's current runs come from the runs it claims."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository
from adapters.persistence.repositories.change_feed import log_change
from application.errors import ConcurrentUpdate
from domain.runners import Runner
from domain.test_runs import RunStatus

RUNNER_CHANGE = "runner"


def _row(runner: Runner) -> dict[str, Any]:
    return {
        "host": runner.host,
        "version": runner.version,
        "executors": list(runner.executors),
        "first_seen_at": runner.first_seen_at,
        "last_seen_at": runner.last_seen_at,
        "runs_done": runner.runs_done,
        "failures": runner.failures,
        "drained": runner.drained,
        "drained_by": runner.drained_by,
        "drained_at": runner.drained_at,
        "drain_reason": runner.drain_reason,
    }


def _runner(row: Any) -> Runner:
    return Runner(
        id=row.id,
        host=row.host,
        version=row.version,
        executors=tuple(row.executors or ()),
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        runs_done=row.runs_done,
        failures=row.failures,
        drained=bool(row.drained),
        drained_by=row.drained_by,
        drained_at=row.drained_at,
        drain_reason=row.drain_reason,
    )


class SqlRunners(SqlRepository):
    def get(self, runner_id: str, for_update: bool = False) -> Runner | None:
        statement = sa.select(t.runners).where(t.runners.c.id == runner_id)
        if for_update:
            statement = statement.with_for_update()
        row = self._execute(statement).first()
        return None if row is None else _runner(row)

    def add(self, runner: Runner) -> None:
        try:
            self._execute(t.runners.insert().values(id=runner.id, **_row(runner)))
        except IntegrityError as error:  # the report fails; the runner sends it again
            raise ConcurrentUpdate(f"runner {runner.id} was registered meanwhile") from error
        log_change(self, RUNNER_CHANGE, runner.id)

    def update(self, runner: Runner, announce: bool = True) -> None:
        self._execute(t.runners.update().where(t.runners.c.id == runner.id).values(**_row(runner)))
        if announce:
            log_change(self, RUNNER_CHANGE, runner.id)

    def list(self, limit: int) -> list[Runner]:
        rows = self._execute(sa.select(t.runners).order_by(t.runners.c.id).limit(limit)).all()
        return [_runner(row) for row in rows]

    def current_runs(self, runner_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
        runs = t.test_runs
        statement = (
            sa.select(runs.c.runner, runs.c.id)
            .where(runs.c.status == RunStatus.RUNNING.value, runs.c.runner != "")
            .order_by(runs.c.created_at, runs.c.id)
        )
        if runner_ids is not None:
            statement = statement.where(runs.c.runner.in_(list(runner_ids)))
        current: dict[str, list[str]] = {}
        for row in self._execute(statement):
            current.setdefault(row.runner, []).append(row.id)
        return current
