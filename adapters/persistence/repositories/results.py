"""Results summarised for comparisons and regression tracking, in SQL.

Two ways to a `domain.comparison.Summary`:

- Kept: `result_summaries` and `result_metric_summaries` hold every completed run's results
  summed up per test case x model x environment x firmware version; `record_completed` adds a
  run as it completes (an upsert per key, in the run's transaction). A scope of firmware,
  model, environment and test case reads those rows: a few per key, however many runs
  there are (measured in bench/comparison.py; docs/comparison.md).
- Read: a scope of one run or a date window cannot come from sums; its results are read
  (through ix_test_run_devices_firmware_version_run_created_at or the results' primary key)
  and summarised by `domain.comparison.summarise`, the rule the in-memory twin uses.

Results are ordered by their run's finish time. The kept `recent` verdicts and newest runs
assume runs complete in that order; two completing in the same instant in two transactions
may be kept the other way round."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository
from application.ports import FirmwareSeen, ResultScope
from domain.comparison import (
    FAIL,
    FLAKY_WINDOW,
    MARGINAL,
    PASS,
    CaseKey,
    Measured,
    MetricSample,
    ResultSample,
    RunRef,
    Summary,
    metric_label,
    summarise,
)
from domain.test_runs import RunPurpose, RunStatus, TestRun

# the kept `recent` verdicts, one letter each; a marginal result counts as passed in the sums
_LETTER = {PASS: "p", FAIL: "f", MARGINAL: "m"}
_VERDICT = {"p": PASS, "f": FAIL, "i": "inconclusive", "m": MARGINAL}
_REFS = ("oldest", "newest", "newest_pass", "oldest_pass", "oldest_fail")
_KEY = ("test_case_id", "model", "environment_id", "firmware_version")


class SqlResults(SqlRepository):
    def summaries(self, scope: ResultScope, by_firmware: bool = False) -> list[Summary]:
        read = scope.run_id is not None or scope.created_from or scope.created_to
        if read or (scope.firmware is None and not by_firmware):
            return summarise(self._samples(scope), by_firmware)
        return self._kept(scope, by_firmware)

    # -- kept sums ---------------------------------------------------------------------------

    def record_completed(self, run: TestRun) -> None:
        """Add the results of a run that just completed to the kept sums."""
        if run.status is not RunStatus.COMPLETED or run.finished_at is None:
            return
        if run.is_health_check:  # it judged a device, not the firmware
            return
        devices = {d.id: d for d in run.devices}
        keyed = []
        for (case_id, device_id), result in run.results.items():
            device = devices[device_id]
            key = (case_id, device.model, run.environment.id, device.firmware_version)
            keyed.append((key, device_id, result))
        # in key order, so that two runs completing at once lock the rows in the same order
        for key_values, _, result in sorted(keyed, key=lambda k: k[:2]):
            key = dict(zip(_KEY, key_values, strict=True))
            self._add_result(key, run.id, run.finished_at, result.verdict.value)
            for m in result.measurements:
                self._add_measurement(key, m.metric, m.condition, m.value, m.threshold, m.unit)

    def _upsert(self, table: sa.Table, row: dict[str, Any], update: Any) -> None:
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        statement = dialect.insert(table).values(**row)
        index = [c.name for c in table.primary_key.columns]
        self._execute(
            statement.on_conflict_do_update(index_elements=index, set_=update(statement.excluded))
        )

    def _add_result(self, key: dict[str, Any], run_id: str, at: datetime, verdict: str) -> None:
        s = t.result_summaries
        letter = _LETTER.get(verdict, "i")
        passed = letter in "pm"
        this = {"run_id": run_id, "at": at}
        none = {"run_id": None, "at": None}
        refs = {
            "oldest": this,
            "newest": this,
            "newest_pass": this if passed else none,
            "oldest_pass": this if passed else none,
            "oldest_fail": this if letter == "f" else none,
        }
        row = {
            **key,
            "passed": int(passed),
            "failed": int(letter == "f"),
            "inconclusive": int(letter == "i"),
            "recent": letter,
            **{f"{ref}_{part}": value for ref, v in refs.items() for part, value in v.items()},
        }

        def update(new: Any) -> dict[str, Any]:
            changes: dict[str, Any] = {
                "passed": s.c.passed + new.passed,
                "failed": s.c.failed + new.failed,
                "inconclusive": s.c.inconclusive + new.inconclusive,
                "recent": sa.func.substr(new.recent + s.c.recent, 1, FLAKY_WINDOW),
            }
            for ref, keep_old in (
                ("newest", False),
                ("newest_pass", False),
                ("oldest_pass", True),
                ("oldest_fail", True),
            ):
                first, second = (s.c, new) if keep_old else (new, s.c)
                for part in ("run_id", "at"):
                    changes[f"{ref}_{part}"] = sa.case(
                        (first[f"{ref}_run_id"].is_not(None), first[f"{ref}_{part}"]),
                        else_=second[f"{ref}_{part}"],
                    )
            return changes

        self._upsert(s, row, update)

    def _add_measurement(
        self,
        key: dict[str, Any],
        metric: str,
        condition: str,
        value: float | None,
        threshold: float,
        unit: str,
    ) -> None:
        m = t.result_metric_summaries
        measured = value is not None
        row = {
            **key,
            "metric": metric,
            "condition": condition,
            "count": int(measured),
            "total": value if measured else 0.0,
            "total_squares": value * value if measured else 0.0,
            "threshold": threshold,
            "unit": unit,
        }
        self._upsert(
            m,
            row,
            lambda new: {
                "count": m.c.count + new.count,
                "total": m.c.total + new.total,
                "total_squares": m.c.total_squares + new.total_squares,
                "threshold": new.threshold,
                "unit": new.unit,
            },
        )

    def _kept(self, scope: ResultScope, by_firmware: bool) -> list[Summary]:
        s, m = t.result_summaries, t.result_metric_summaries
        rows = [_summary(row) for row in self._execute(sa.select(s).where(*_where(s, scope)))]
        metrics: dict[tuple, dict[str, MetricSample]] = {}
        for row in self._execute(sa.select(m).where(*_where(m, scope))):
            sample = MetricSample(
                row.metric,
                row.count,
                row.total,
                row.total_squares,
                row.condition,
                row.threshold,
                row.unit,
            )
            key = (_case_key(row), row.firmware_version)
            metrics.setdefault(key, {})[metric_label(row.metric, row.condition)] = sample
        found = [
            replace(
                summary,
                metrics=metrics.get((summary.key, summary.firmware), {}),
                # one firmware version in scope: a side's summary, as `summarise` makes it
                firmware=summary.firmware if by_firmware else "",
            )
            for summary in rows
        ]
        return sorted(found, key=lambda x: (x.key, x.firmware))

    def firmware_versions(self) -> list[FirmwareSeen]:
        s = t.result_summaries.c
        statement = sa.select(
            s.firmware_version,
            sa.func.min(s.oldest_at),
            sa.func.sum(s.passed + s.failed + s.inconclusive),
        ).group_by(s.firmware_version)
        rows = self._execute(statement).all()
        return [FirmwareSeen(v, first, int(n)) for v, first, n in sorted(rows)]

    # -- read and summarised -----------------------------------------------------------------

    def _samples(self, scope: ResultScope) -> Iterator[ResultSample]:
        results, devices, runs = t.test_run_results.c, t.test_run_devices.c, t.test_runs.c
        model = devices.snapshot["model"].as_string()
        conditions = [
            runs.status == RunStatus.COMPLETED.value,
            runs.purpose == RunPurpose.NORMAL.value,  # a health check judged a device
        ]
        if scope.firmware is not None:
            conditions.append(devices.firmware_version == scope.firmware)
        if scope.run_id is not None:
            conditions.append(devices.run_id == scope.run_id)
        if scope.model is not None:
            conditions.append(model == scope.model)
        if scope.environment_id is not None:
            conditions.append(runs.environment_id == scope.environment_id)
        if scope.test_case_id is not None:
            conditions.append(results.test_case_id == scope.test_case_id)
        # on the device row, so that a firmware version's index is read for the window only
        if scope.created_from is not None:
            conditions.append(devices.run_created_at >= scope.created_from)
        if scope.created_to is not None:
            conditions.append(devices.run_created_at <= scope.created_to)
        statement = (
            sa.select(
                results.test_case_id,
                model.label("model"),
                runs.environment_id,
                devices.firmware_version,
                devices.device_id,
                results.verdict,
                results.run_id,
                runs.finished_at,
                results.measurements,
            )
            .select_from(
                t.test_run_devices.join(
                    t.test_run_results,
                    (results.run_id == devices.run_id) & (results.device_id == devices.device_id),
                ).join(t.test_runs, runs.id == devices.run_id)
            )
            .where(*conditions)
        )
        for row in self._execute(statement):
            yield ResultSample(
                key=CaseKey(row.test_case_id, row.model or "", row.environment_id),
                run=RunRef(row.run_id, row.finished_at),
                verdict=row.verdict,
                measurements=[_measured(m) for m in row.measurements],
                firmware=row.firmware_version,
                device_id=row.device_id,
            )


def _where(table: sa.Table, scope: ResultScope) -> list[Any]:
    wanted = {
        "firmware_version": scope.firmware,
        "model": scope.model,
        "environment_id": scope.environment_id,
        "test_case_id": scope.test_case_id,
    }
    return [table.c[name] == value for name, value in wanted.items() if value is not None]


def _case_key(row: Any) -> CaseKey:
    return CaseKey(row.test_case_id, row.model, row.environment_id)


def _ref(row: Any, name: str) -> RunRef | None:
    run_id, at = row._mapping[f"{name}_run_id"], row._mapping[f"{name}_at"]
    return None if run_id is None else RunRef(run_id, at)


def _summary(row: Any) -> Summary:
    recent = [_VERDICT[letter] for letter in row.recent]
    return Summary(
        key=_case_key(row),
        passed=row.passed,
        failed=row.failed,
        inconclusive=row.inconclusive,
        recent_passed=recent.count(PASS) + recent.count(MARGINAL),
        recent_failed=recent.count(FAIL),
        recent_marginal=recent.count(MARGINAL),
        firmware=row.firmware_version,
        **{ref: _ref(row, ref) for ref in _REFS},
    )


def _measured(data: dict[str, Any]) -> Measured:
    value = data.get("value")
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return Measured(data["metric"], number, data["condition"], data["threshold"], data["unit"])
