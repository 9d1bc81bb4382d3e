"""The in-memory twin of the result queries: the runs in the store, summarised in Python by
`domain.comparison.summarise` (the SQL store computes the same in the database)."""

from __future__ import annotations

from collections.abc import Iterator

from application.ports import FirmwareSeen, ResultScope
from domain.comparison import CaseKey, Measured, ResultSample, RunRef, Summary, summarise
from domain.test_runs import RunStatus, TestRun


class InMemoryResults:
    def __init__(self, runs: dict[str, TestRun]) -> None:
        self.runs = runs

    def record_completed(self, run: TestRun) -> None:
        """Nothing to keep: the summaries are computed from the runs each time."""

    def summaries(self, scope: ResultScope, by_firmware: bool = False) -> list[Summary]:
        return summarise(self._samples(scope), by_firmware)

    def _samples(self, scope: ResultScope) -> Iterator[ResultSample]:
        for run in self.runs.values():
            if run.status is not RunStatus.COMPLETED or run.is_health_check:
                continue
            if scope.run_id is not None and run.id != scope.run_id:
                continue
            if scope.environment_id is not None and run.environment.id != scope.environment_id:
                continue
            if scope.created_from is not None and run.created_at < scope.created_from:
                continue
            if scope.created_to is not None and run.created_at > scope.created_to:
                continue
            devices = {d.id: d for d in run.devices}
            for (case_id, device_id), result in run.results.items():
                device = devices[device_id]
                if scope.test_case_id is not None and case_id != scope.test_case_id:
                    continue
                if scope.firmware is not None and device.firmware_version != scope.firmware:
                    continue
                if scope.model is not None and device.model != scope.model:
                    continue
                yield ResultSample(
                    key=CaseKey(case_id, device.model, run.environment.id),
                    run=RunRef(run.id, run.finished_at),
                    verdict=result.verdict.value,
                    measurements=[
                        Measured(m.metric, m.value, m.condition, m.threshold, m.unit)
                        for m in result.measurements
                    ],
                    firmware=device.firmware_version,
                    device_id=device_id,
                )

    def firmware_versions(self) -> list[FirmwareSeen]:
        seen: dict[str, tuple] = {}
        for sample in self._samples(ResultScope()):
            first, count = seen.get(sample.firmware, (sample.run.at, 0))
            seen[sample.firmware] = (min(first, sample.run.at), count + 1)
        return [FirmwareSeen(v, first, n) for v, (first, n) in sorted(seen.items())]
