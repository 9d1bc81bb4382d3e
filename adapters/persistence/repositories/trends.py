"""The results of one test case over time, for its trend (application.ports.ResultTrends).

The newest window comes from ix_test_runs_status_finished_at, read backwards from the newest
completed run (or from `to`), each run probed for the case's results through the primary key
of test_run_results (run_id, test_case_id, ...); the LIMIT stops the walk. A case that ran
rarely among many runs walks further; the `from` bound stops it there."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository
from adapters.persistence.repositories.results import _measured
from application.ports import TrendScope
from domain.test_runs import RunPurpose, RunStatus
from domain.trends import TrendResult


class SqlTrends(SqlRepository):
    def results(self, scope: TrendScope) -> list[TrendResult]:
        return [
            TrendResult(
                row.run_id,
                row.finished_at,
                row.device_id,
                row.device_name or row.device_id,
                row.model or "",
                row.firmware_version,
                row.verdict,
                tuple(_measured(m) for m in row.measurements),
            )
            for row in self._execute(trend_query(scope))
        ]


def trend_query(scope: TrendScope) -> sa.Select:
    results, devices, runs = t.test_run_results.c, t.test_run_devices.c, t.test_runs.c
    model = devices.snapshot["model"].as_string()
    name = devices.snapshot["name"].as_string()
    conditions = [
        runs.status == RunStatus.COMPLETED.value,
        runs.purpose == RunPurpose.NORMAL.value,  # a health check judged a device
        runs.finished_at.is_not(None),
        results.test_case_id == scope.test_case_id,
    ]
    if scope.finished_from is not None:
        conditions.append(runs.finished_at >= scope.finished_from)
    if scope.finished_to is not None:
        conditions.append(runs.finished_at <= scope.finished_to)
    if scope.device_id is not None:
        conditions.append(results.device_id == scope.device_id)
    if scope.model is not None:
        conditions.append(model == scope.model)
    return (
        sa.select(
            results.run_id,
            runs.finished_at,
            results.device_id,
            name.label("device_name"),
            model.label("model"),
            devices.firmware_version,
            results.verdict,
            results.measurements,
        )
        .select_from(
            t.test_runs.join(t.test_run_results, results.run_id == runs.id).join(
                t.test_run_devices,
                (devices.run_id == results.run_id) & (devices.device_id == results.device_id),
            )
        )
        .where(*conditions)
        .order_by(runs.finished_at.desc(), results.run_id.desc(), results.device_id.desc())
        .limit(scope.limit)
    )
