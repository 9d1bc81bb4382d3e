"""Results out of the lab for other tools: the run history as rows (for CSV), read page by
page so that an export of a hundred thousand runs never holds more than one page of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from application.ports import RunFilter
from application.ports import UnitOfWorkFactory as UowFactory
from application.use_cases.test_runs import check_run_filter, run_key
from domain.test_cases import Criterion, TestCaseSnapshot
from domain.test_runs import CaseResult, DeviceSnapshot, Measurement, TestRun

EXPORT_PAGE_SIZE = 200


@dataclass(frozen=True)
class ResultRow:
    """One run by device by criterion. A run without devices (it never left the queue) still
    gives a row, with the missing parts None, so every run shows."""

    run: TestRun
    device: DeviceSnapshot | None
    case: TestCaseSnapshot | None
    criterion: Criterion | None
    result: CaseResult | None
    measurement: Measurement | None


def result_rows(run: TestRun) -> Iterator[ResultRow]:
    if not run.devices or not run.test_cases:
        yield ResultRow(run, None, None, None, None, None)
        return
    for device in run.devices:
        for case in run.test_cases:
            result = run.results.get((case.id, device.id))
            measured = result.measurements if result else ()
            for n, criterion in enumerate(case.criteria):  # a case has at least one
                measurement = measured[n] if n < len(measured) else None
                yield ResultRow(run, device, case, criterion, result, measurement)


class ExportTestRuns:
    """The runs of the history filter, newest first, as result rows. Each page of runs is
    read in its own short read-only unit of work (keyset pages, as the run list), so the
    caller can stream the rows out while the next page is not loaded yet, and no transaction
    stays open while a slow client reads."""

    def __init__(self, uow: UowFactory, page_size: int = EXPORT_PAGE_SIZE) -> None:
        self.uow, self.page_size = uow, page_size

    def __call__(self, where: RunFilter) -> Iterator[ResultRow]:
        check_run_filter(where)  # refused before the first byte of an answer is sent
        return self._rows(where)

    def _rows(self, where: RunFilter) -> Iterator[ResultRow]:
        after: tuple | None = None
        while True:
            with self.uow(read_only=True) as uow:
                runs = uow.test_runs.list(where, self.page_size, after)
            for run in runs:
                yield from result_rows(run)
            if len(runs) < self.page_size:
                return
            after = run_key(runs[-1])
