"""Lab statistics, read straight from the tables."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository
from application.ports import LabStatistics
from domain.devices import DeviceStatus
from domain.holds import HoldStatus
from domain.test_runs import (
    RunPurpose,
    RunStatus,
    Verdict,
)

# pass rates and the most failing test cases count the lab's own runs, not the health checks
_NORMAL = RunPurpose.NORMAL.value


class SqlStatistics(SqlRepository):
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
                runs.c.status == RunStatus.COMPLETED.value,
                runs.c.purpose == _NORMAL,
                runs.c.finished_at >= since,
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
            .where(
                results.c.verdict == Verdict.FAIL.value,
                runs.c.purpose == _NORMAL,
                runs.c.finished_at >= since,
            )
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
                .where(
                    cases.c.test_case_id == case_id,
                    runs.c.purpose == _NORMAL,
                    runs.c.finished_at >= since,
                )
            ).scalar()
            name = self._execute(
                sa.select(cases.c.snapshot)
                .where(cases.c.test_case_id == case_id)
                .order_by(cases.c.version.desc())
                .limit(1)
            ).scalar()
            most_failing.append((case_id, name["name"] if name else case_id, failures, run_count))
        waiting, oldest = 0, None
        for table, status in ((runs, RunStatus.WAITING.value), (t.holds, HoldStatus.WAITING.value)):
            count, first = self._execute(
                sa.select(sa.func.count(), sa.func.min(table.c.created_at)).where(
                    table.c.status == status
                )
            ).one()
            waiting += count
            if first is not None and (oldest is None or first < oldest):
                oldest = first
        return LabStatistics(
            devices_by_status={s.value: by_status.get(s.value, 0) for s in DeviceStatus},
            runs_by_status={s.value: runs_by_status.get(s.value, 0) for s in RunStatus},
            verdicts_by_day=sorted((day, verdict, n) for (day, verdict), n in per_day.items()),
            most_failing_test_cases=most_failing,
            waiting=waiting,
            oldest_waiting_since=oldest,
        )
