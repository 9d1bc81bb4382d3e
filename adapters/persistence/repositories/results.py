"""Results summarised for comparisons and regression tracking, in SQL.

The summaries (`domain.comparison.Summary`) are computed by the database: one pass over the
results in scope, each joined to its device row (firmware, model from the snapshot) and its
run (status, environment, time); window functions number each key's results newest first (the
flaky window) and find the newest / oldest pass and fail; a second query adds up the measured
values per metric from the measurements' JSON. The same rule in Python is
`domain.comparison.summarise` (the in-memory twin); the integration tests hold them equal.

Index use: a firmware scope starts from ix_test_run_devices_firmware_version_run_created_at
(with a date window, only that part of it), a run scope from the results' primary key; the
rest are primary-key lookups."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository
from application.ports import FirmwareSeen, ResultScope
from domain.comparison import (
    FAIL,
    FLAKY_WINDOW,
    PASS,
    CaseKey,
    MetricSample,
    RunRef,
    Summary,
    metric_label,
)
from domain.test_runs import RunStatus

_KEY = ("test_case_id", "model", "environment_id")


class SqlResults(SqlRepository):
    def summaries(self, scope: ResultScope, by_firmware: bool = False) -> list[Summary]:
        rows = self._scoped(scope, by_firmware)
        group = [rows.c[name] for name in (*_KEY, "firmware")]
        c = rows.c

        def count(condition: Any) -> Any:
            return sa.func.sum(sa.case((condition, 1), else_=0))

        def pick(column: Any, condition: Any) -> Any:
            return sa.func.max(sa.case((condition, column)))

        newest_pass = (c.verdict == PASS) & (c.newest_of_verdict == 1)
        oldest_pass = (c.verdict == PASS) & (c.oldest_of_verdict == 1)
        oldest_fail = (c.verdict == FAIL) & (c.oldest_of_verdict == 1)
        recent = c.recency <= FLAKY_WINDOW
        statement = sa.select(
            *group,
            count(c.verdict == PASS).label("passed"),
            count(c.verdict == FAIL).label("failed"),
            sa.func.count().label("results"),
            count(recent & (c.verdict == PASS)).label("recent_passed"),
            count(recent & (c.verdict == FAIL)).label("recent_failed"),
            pick(c.run_id, c.recency == 1).label("newest_run"),
            pick(c.created_at, c.recency == 1).label("newest_at"),
            pick(c.run_id, newest_pass).label("newest_pass_run"),
            pick(c.created_at, newest_pass).label("newest_pass_at"),
            pick(c.run_id, oldest_pass).label("oldest_pass_run"),
            pick(c.created_at, oldest_pass).label("oldest_pass_at"),
            pick(c.run_id, oldest_fail).label("oldest_fail_run"),
            pick(c.created_at, oldest_fail).label("oldest_fail_at"),
        ).group_by(*group)
        metrics = {} if by_firmware else self._metrics(rows)
        summaries = []
        for row in self._execute(statement):
            key = CaseKey(row.test_case_id, row.model or "", row.environment_id)
            summaries.append(
                Summary(
                    key=key,
                    passed=row.passed,
                    failed=row.failed,
                    inconclusive=row.results - row.passed - row.failed,
                    recent_passed=row.recent_passed,
                    recent_failed=row.recent_failed,
                    metrics=metrics.get(key, {}),
                    firmware=row.firmware if by_firmware else "",
                    newest=_ref(row.newest_run, row.newest_at),
                    newest_pass=_ref(row.newest_pass_run, row.newest_pass_at),
                    oldest_pass=_ref(row.oldest_pass_run, row.oldest_pass_at),
                    oldest_fail=_ref(row.oldest_fail_run, row.oldest_fail_at),
                )
            )
        return sorted(summaries, key=lambda s: (s.key, s.firmware))

    def _scoped(self, scope: ResultScope, by_firmware: bool) -> sa.CTE:
        """The results in scope with their key, numbered per key (and firmware) newest first,
        and per verdict both ways."""
        results, devices, runs = t.test_run_results.c, t.test_run_devices.c, t.test_runs.c
        model = devices.snapshot["model"].as_string()
        firmware = devices.firmware_version if by_firmware else sa.literal("")
        partition = [results.test_case_id, model, runs.environment_id]
        if by_firmware:
            partition.append(devices.firmware_version)
        newest_first = (runs.created_at.desc(), results.run_id.desc())
        oldest_first = (runs.created_at, results.run_id)
        conditions = [runs.status == RunStatus.COMPLETED.value]
        if scope.firmware is not None:
            conditions.append(devices.firmware_version == scope.firmware)
        if scope.run_id is not None:
            conditions.append(results.run_id == scope.run_id)
        if scope.model is not None:
            conditions.append(model == scope.model)
        if scope.environment_id is not None:
            conditions.append(runs.environment_id == scope.environment_id)
        if scope.test_case_id is not None:
            conditions.append(results.test_case_id == scope.test_case_id)
        # on the device row as well, so that a firmware scope reads only part of its index
        if scope.created_from is not None:
            conditions.append(devices.run_created_at >= scope.created_from)
            conditions.append(runs.created_at >= scope.created_from)
        if scope.created_to is not None:
            conditions.append(devices.run_created_at <= scope.created_to)
            conditions.append(runs.created_at <= scope.created_to)
        return (
            sa.select(
                results.test_case_id,
                model.label("model"),
                runs.environment_id,
                firmware.label("firmware"),
                results.verdict,
                results.run_id,
                runs.created_at,
                results.measurements,
                sa.func.row_number()
                .over(partition_by=partition, order_by=newest_first)
                .label("recency"),
                sa.func.row_number()
                .over(partition_by=[*partition, results.verdict], order_by=newest_first)
                .label("newest_of_verdict"),
                sa.func.row_number()
                .over(partition_by=[*partition, results.verdict], order_by=oldest_first)
                .label("oldest_of_verdict"),
            )
            .select_from(
                t.test_run_devices.join(
                    t.test_run_results,
                    (results.run_id == devices.run_id) & (results.device_id == devices.device_id),
                ).join(t.test_runs, runs.id == results.run_id)
            )
            .where(*conditions)
            .cte("scoped")
        )

    def _metrics(self, rows: sa.CTE) -> dict[CaseKey, Mapping[str, MetricSample]]:
        """Per key and metric: count, sum and sum of squares of the measured numbers, and
        the criterion of the newest result that has the metric."""
        if self.dialect == "postgresql":
            element = sa.func.jsonb_array_elements(rows.c.measurements).table_valued(
                sa.column("value", t.json_document())
            )
            is_number = sa.func.jsonb_typeof(element.c.value["value"]) == "number"
        else:
            element = sa.func.json_each(rows.c.measurements).table_valued(
                sa.column("value", sa.JSON())
            )
            is_number = sa.func.json_type(element.c.value, "$.value").in_(("integer", "real"))
        item = element.c.value
        metric = item["metric"].as_string()
        condition = item["condition"].as_string()
        value = sa.case((is_number, item["value"].as_float()))
        newest = sa.func.min(rows.c.recency)
        statement = (
            sa.select(
                rows.c.test_case_id,
                rows.c.model,
                rows.c.environment_id,
                metric.label("metric"),
                condition.label("condition"),
                sa.func.count(value).label("n"),
                sa.func.sum(value).label("total"),
                sa.func.sum(value * value).label("squares"),
                newest.label("newest"),
            )
            .select_from(rows.join(element, sa.true()))
            .group_by(rows.c.test_case_id, rows.c.model, rows.c.environment_id, metric, condition)
        )
        criteria = (
            sa.select(
                rows.c.test_case_id,
                rows.c.model,
                rows.c.environment_id,
                rows.c.recency,
                metric.label("metric"),
                condition.label("condition"),
                item["threshold"].as_float().label("threshold"),
                item["unit"].as_string().label("unit"),
            )
            .select_from(rows.join(element, sa.true()))
            .subquery()
        )
        totals = statement.subquery()
        joined = sa.select(totals, criteria.c.threshold, criteria.c.unit).join(
            criteria,
            (criteria.c.test_case_id == totals.c.test_case_id)
            & (criteria.c.model == totals.c.model)
            & (criteria.c.environment_id == totals.c.environment_id)
            & (criteria.c.metric == totals.c.metric)
            & (criteria.c.condition == totals.c.condition)
            & (criteria.c.recency == totals.c.newest),
        )
        found: dict[CaseKey, dict[str, MetricSample]] = {}
        for row in self._execute(joined):
            key = CaseKey(row.test_case_id, row.model or "", row.environment_id)
            found.setdefault(key, {})[metric_label(row.metric, row.condition)] = MetricSample(
                row.metric,
                row.n,
                float(row.total or 0.0),
                float(row.squares or 0.0),
                row.condition or "",
                row.threshold,
                row.unit or "",
            )
        return found

    def firmware_versions(self) -> list[FirmwareSeen]:
        devices = t.test_run_devices.c
        statement = (
            sa.select(
                devices.firmware_version,
                sa.func.min(devices.run_created_at),
                sa.func.count(sa.distinct(devices.run_id)),
            )
            .group_by(devices.firmware_version)
            .order_by(devices.firmware_version)
        )
        return [FirmwareSeen(v, first, n) for v, first, n in self._execute(statement)]


def _ref(run_id: str | None, at: datetime | None) -> RunRef | None:
    if run_id is None or at is None:
        return None
    return RunRef(run_id, at)
