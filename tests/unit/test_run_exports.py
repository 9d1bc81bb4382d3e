"""The run history export: rows per run by device by criterion, read in keyset pages, each in
its own short unit of work, lazily (a row is out before the next page is read)."""

from __future__ import annotations

import pytest

from application.ports import RunFilter
from application.use_cases.run_exports import ExportTestRuns, result_rows
from domain.errors import InvalidValue
from domain.test_runs import Observation, ResultReport


class CountingUnitsOfWork:
    """The lab's unit of work, counting how many were opened (one per page read)."""

    def __init__(self, lab):
        self.lab, self.opened = lab, 0

    def __call__(self, read_only: bool = False):
        self.opened += 1
        return self.lab.new_uow(read_only)


@pytest.fixture
def history(lab, clock):
    meters = [lab.add_device(f"meter-{n}") for n in range(2)]
    case = lab.add_test_case("power", criteria=[("voltage", "<=", 240.0), ("power", "<", 2.0)])
    environment = lab.add_environment()
    runs = []
    for _ in range(5):
        run = lab.start(meters, [case], environment)
        lab.cancel_test_run(run.id, "tester", "next")
        runs.append(run)
        clock.advance(1)
    return runs


def test_runs_come_newest_first_in_pages_each_in_its_own_unit_of_work(lab, history):
    units = CountingUnitsOfWork(lab)
    export = ExportTestRuns(units, page_size=2)
    rows = export(RunFilter())
    assert units.opened == 0  # nothing is read before the first row is asked for

    first = next(rows)
    assert first.run.id == history[-1].id and units.opened == 1
    rest = list(rows)
    assert units.opened == 3  # 5 runs in pages of 2
    run_order = list(dict.fromkeys(r.run.id for r in [first, *rest]))
    assert run_order == [run.id for run in reversed(history)]
    assert len(rest) + 1 == 5 * 2 * 2  # runs by devices by criteria


def test_the_export_uses_the_run_lists_filters(lab, history):
    export = ExportTestRuns(lab.new_uow, page_size=2)
    since = history[3].created_at
    ids = {r.run.id for r in export(RunFilter(created_from=since))}
    assert ids == {history[3].id, history[4].id}


def test_a_filter_from_after_to_is_refused_at_the_call(lab, history):
    export = ExportTestRuns(lab.new_uow)
    with pytest.raises(InvalidValue):
        export(RunFilter(created_from=history[1].created_at, created_to=history[0].created_at))


def test_rows_carry_the_measurement_of_each_criterion(lab, clock):
    meter = lab.add_device("meter")
    case = lab.add_test_case("power", criteria=[("voltage", "<=", 240.0), ("power", "<", 2.0)])
    smoke = lab.add_test_case("smoke")
    run = lab.start([meter], [case, smoke], lab.add_environment())
    lab.record_result(
        run.id,
        [
            ResultReport(
                case.id, meter.id, (Observation("voltage", 250.0), Observation("power", 1))
            ),
            ResultReport(smoke.id, meter.id),
        ],
    )
    rows = list(result_rows(lab.get_test_run(run.id)))
    assert [(r.case.name, r.criterion and r.criterion.metric) for r in rows] == [
        ("power", "voltage"),
        ("power", "power"),
        ("smoke", "voltage"),
    ]
    assert [r.measurement and r.measurement.passed for r in rows] == [False, True, None]
    assert rows[2].result.verdict.value == "inconclusive"


def test_a_run_without_devices_still_has_its_row(lab):
    meter = lab.add_device("meter")
    case = lab.add_test_case("power")
    environment = lab.add_environment()
    lab.start([meter], [case], environment)
    waiting = lab.start([meter], [case], environment)
    assert waiting.waiting
    (row,) = result_rows(waiting)
    assert row.device is None and row.case is None and row.run.id == waiting.id
