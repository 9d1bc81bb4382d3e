"""The in-memory twin of the trend query: the completed runs in the store, filtered and cut
in Python (the SQL store does it on its indexes)."""

from __future__ import annotations

from application.ports import TrendScope
from domain.comparison import Measured
from domain.test_runs import RunStatus, TestRun
from domain.trends import TrendResult


class InMemoryTrends:
    def __init__(self, runs: dict[str, TestRun]) -> None:
        self.runs = runs

    def results(self, scope: TrendScope) -> list[TrendResult]:
        found = []
        for run in self.runs.values():
            at = run.finished_at
            if run.status is not RunStatus.COMPLETED or at is None or run.is_health_check:
                continue
            if scope.finished_from is not None and at < scope.finished_from:
                continue
            if scope.finished_to is not None and at > scope.finished_to:
                continue
            devices = {d.id: d for d in run.devices}
            for (case_id, device_id), result in run.results.items():
                device = devices[device_id]
                if case_id != scope.test_case_id:
                    continue
                if scope.device_id is not None and device_id != scope.device_id:
                    continue
                if scope.model is not None and device.model != scope.model:
                    continue
                found.append(
                    TrendResult(
                        run.id,
                        at,
                        device_id,
                        device.name,
                        device.model,
                        device.firmware_version,
                        result.verdict.value,
                        tuple(
                            Measured(m.metric, m.value, m.condition, m.threshold, m.unit)
                            for m in result.measurements
                        ),
                    )
                )
        found.sort(key=lambda r: (r.finished_at, r.run_id, r.device_id), reverse=True)
        return found[: scope.limit]
