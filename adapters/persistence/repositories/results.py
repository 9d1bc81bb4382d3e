"""Results summarised for comparisons and regression tracking, in SQL.

Two ways to a `domain.comparison.Summary`:

- Kept: `result_summaries` and `result_metric_summaries` hold every completed run's results
  summed up per test case x model x environment x firmware version; `record_completed` adds a
  run as it completes (an upsert per key, in the run's transaction). A scope of firmware,
  model, environment and test case reads those rows: a few per key, however many runs
  there are (measured in bench/comparison.py; docs/comparison.md).
- Kept per day: `result_day_summaries` and `result_day_metric_summaries` hold the same sums
  per UTC day of the runs' creation (0019). A firmware version in a date window reads the
  whole days inside it from there and the results of its partial first and last day, and
  `domain.comparison.combine` puts the parts together as `summarise` would have made them.
- Read: a scope of one run (or no firmware version) cannot come from sums; its results are
  read (through ix_test_run_devices_firmware_version_run_created_at or the results' primary
  key) and summarised by `domain.comparison.summarise`, the rule the in-memory twin uses.

Results are ordered by their run's finish time. The kept `recent` verdicts and newest runs
assume runs complete in that order; two completing in the same instant in two transactions
may be kept the other way round."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
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
    RecentResult,
    ResultOrder,
    ResultSample,
    RunRef,
    Summary,
    SummaryPart,
    combine,
    metric_label,
    summarise,
    summary_parts,
)
from domain.test_runs import RunPurpose, RunStatus, TestRun

# the kept `recent` verdicts, one letter each; a marginal result counts as passed in the sums
_LETTER = {PASS: "p", FAIL: "f", MARGINAL: "m"}
_VERDICT = {"p": PASS, "f": FAIL, "i": "inconclusive", "m": MARGINAL}
_REFS = ("oldest", "newest", "newest_pass", "oldest_pass", "oldest_fail")
_KEY = ("test_case_id", "model", "environment_id", "firmware_version")
_ORDER_AT = "%Y-%m-%dT%H:%M:%S.%f"  # 26 characters, then the run and device ids padded
_TICK = timedelta(microseconds=1)  # the finest step of a stored time: `to` is inclusive


class SqlResults(SqlRepository):
    def summaries(self, scope: ResultScope, by_firmware: bool = False) -> list[Summary]:
        windowed = scope.created_from is not None or scope.created_to is not None
        if scope.run_id is not None or (scope.firmware is None and not by_firmware):
            return summarise(self._samples(scope), by_firmware)
        if windowed:
            if by_firmware:
                return summarise(self._samples(scope), by_firmware)
            return self._windowed(scope)
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
        day = run.created_at.astimezone(UTC).date()
        # in key order, so that two runs completing at once lock the rows in the same order;
        # a run's results of one key oldest first by device: `recent` gets the newest in front
        for key_values, device_id, result in sorted(keyed, key=lambda k: k[:2]):
            key = dict(zip(_KEY, key_values, strict=True))
            verdict = result.verdict.value
            letter = _LETTER.get(verdict, "i")
            order = _order_text((run.finished_at, run.id, device_id))
            kept = t.result_summaries, letter, FLAKY_WINDOW
            by_day = t.result_day_summaries, order + letter, FLAKY_WINDOW * t.DAY_RECENT_WIDTH
            for (table, recent, width), at_key in ((kept, key), (by_day, {**key, "day": day})):
                self._add_result(table, at_key, run.id, run.finished_at, verdict, recent, width)
            for m in result.measurements:
                measured = m.metric, m.condition, m.value, m.threshold, m.unit
                self._add_measurement(t.result_metric_summaries, key, *measured)
                self._add_measurement(
                    t.result_day_metric_summaries,
                    {**key, "day": day},
                    *measured,
                    criterion_from=order,
                )

    def _upsert(self, table: sa.Table, row: dict[str, Any], update: Any) -> None:
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        statement = dialect.insert(table).values(**row)
        index = [c.name for c in table.primary_key.columns]
        self._execute(
            statement.on_conflict_do_update(index_elements=index, set_=update(statement.excluded))
        )

    def _add_result(
        self,
        s: sa.Table,
        key: dict[str, Any],
        run_id: str,
        at: datetime,
        verdict: str,
        recent: str,
        recent_width: int,
    ) -> None:
        """One result into a summary row: counts, the newest first in `recent` (cut at
        `recent_width` characters), the runs kept by reference."""
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
            "recent": recent,
            **{f"{ref}_{part}": value for ref, v in refs.items() for part, value in v.items()},
        }

        def update(new: Any) -> dict[str, Any]:
            changes: dict[str, Any] = {
                "passed": s.c.passed + new.passed,
                "failed": s.c.failed + new.failed,
                "inconclusive": s.c.inconclusive + new.inconclusive,
                "recent": sa.func.substr(new.recent + s.c.recent, 1, recent_width),
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
        m: sa.Table,
        key: dict[str, Any],
        metric: str,
        condition: str,
        value: float | None,
        threshold: float,
        unit: str,
        **criterion_from: str,
    ) -> None:
        """One measured value into a metric summary row; the criterion is the newest's (and
        on a day's row, `criterion_from` says whose it is)."""
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
            **criterion_from,
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
                **{name: new[name] for name in criterion_from},
            },
        )

    def _kept(self, scope: ResultScope, by_firmware: bool) -> list[Summary]:
        s, m = t.result_summaries, t.result_metric_summaries
        rows = [_summary(row) for row in self._execute(sa.select(s).where(*_where(s, scope)))]
        metrics: dict[tuple, dict[str, MetricSample]] = {}
        for row in self._execute(sa.select(m).where(*_where(m, scope))):
            key = (_case_key(row), row.firmware_version)
            metrics.setdefault(key, {})[metric_label(row.metric, row.condition)] = _metric(row)
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

    def _windowed(self, scope: ResultScope) -> list[Summary]:
        """One firmware version in a window of creation times: the whole UTC days inside it
        from the day sums, the rest (its partial first and last day) from the results."""
        start, end = scope.created_from, scope.created_to
        first_day = None if start is None else _midnight_on_or_after(start)
        after_days = None if end is None else _midnight_on_or_before(end + _TICK)
        if first_day is not None and after_days is not None and first_day >= after_days:
            return summarise(self._samples(scope))  # no whole day inside
        parts = self._day_parts(scope, first_day, after_days)
        if start is not None and first_day is not None and start < first_day:
            edge = replace(scope, created_to=None)
            parts.extend(summary_parts(self._samples(edge, created_before=first_day)))
        if end is not None and after_days is not None and after_days <= end:
            parts.extend(summary_parts(self._samples(replace(scope, created_from=after_days))))
        return combine(parts)

    def _day_parts(
        self, scope: ResultScope, first_day: datetime | None, after_days: datetime | None
    ) -> list[SummaryPart]:
        s, m = t.result_day_summaries, t.result_day_metric_summaries

        def days(table: sa.Table) -> list[Any]:
            where = _where(table, scope)
            if first_day is not None:
                where.append(table.c.day >= first_day.date())
            if after_days is not None:
                where.append(table.c.day < after_days.date())
            return list(self._execute(sa.select(table).where(*where)))

        metrics: dict[tuple, dict[str, tuple[MetricSample, ResultOrder]]] = {}
        for row in days(m):
            label = metric_label(row.metric, row.condition)
            found = (_metric(row), _parse_order(row.criterion_from))
            metrics.setdefault((_case_key(row), row.day), {})[label] = found
        parts = []
        for row in days(s):
            measured = metrics.get((_case_key(row), row.day), {})
            recent = tuple(
                RecentResult(
                    _parse_order(entry[: t.DAY_ORDER_WIDTH]), _VERDICT[entry[t.DAY_ORDER_WIDTH]]
                )
                for entry in _entries(row.recent)
            )
            summary = replace(
                _summary(row, [r.verdict for r in recent]),
                firmware="",  # one firmware version: a side's summary, as `summarise` makes it
                metrics={label: sample for label, (sample, _) in measured.items()},
            )
            criteria_from = {label: order for label, (_, order) in measured.items()}
            parts.append(SummaryPart(summary, recent, criteria_from))
        return parts

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

    def _samples(
        self, scope: ResultScope, created_before: datetime | None = None
    ) -> Iterator[ResultSample]:
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
        if created_before is not None:
            conditions.append(devices.run_created_at < created_before)
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


def _metric(row: Any) -> MetricSample:
    return MetricSample(
        row.metric, row.count, row.total, row.total_squares, row.condition, row.threshold, row.unit
    )


def _order_text(order: ResultOrder) -> str:
    """A result's place in the order of results, as a day's `recent` keeps it."""
    at, run_id, device_id = order
    text = at.astimezone(UTC).strftime(_ORDER_AT) + run_id.ljust(t.ID_LENGTH)
    return text + device_id.ljust(t.ID_LENGTH)


def _parse_order(text: str) -> ResultOrder:
    at = datetime.fromisoformat(text[:26]).replace(tzinfo=UTC)  # _ORDER_AT is ISO 8601
    run_id, device_id = text[26 : 26 + t.ID_LENGTH], text[26 + t.ID_LENGTH :]
    return at, run_id.rstrip(" "), device_id.rstrip(" ")


def _entries(recent: str) -> list[str]:
    width = t.DAY_RECENT_WIDTH
    return [recent[i : i + width] for i in range(0, len(recent), width)]


def _midnight_on_or_after(at: datetime) -> datetime:
    midnight = _midnight_on_or_before(at)
    return midnight if midnight == at.astimezone(UTC) else midnight + timedelta(days=1)


def _midnight_on_or_before(at: datetime) -> datetime:
    return datetime.combine(at.astimezone(UTC).date(), time(), tzinfo=UTC)


def _summary(row: Any, recent: list[str] | None = None) -> Summary:
    """A kept row as a summary; `recent`: its newest verdicts, if not its letters."""
    recent = [_VERDICT[letter] for letter in row.recent] if recent is None else recent
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
