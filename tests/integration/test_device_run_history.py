"""One device's runs, the way the run list reads them since migration 0003 (from the bookings'
own copy of the run's time, in index order): newest first across pages without gaps or
repeats, also with ties in time and with other filters; and the migration fills that copy in
for runs that existed before it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from adapters.persistence import tables
from adapters.persistence.engine import make_engine
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from application.ports import RunFilter
from domain.test_runs import RunStatus


def walk(lab: Any, where: RunFilter, limit: int) -> list[str]:
    seen, cursor = [], None
    while True:
        page = lab.list_test_runs(where, limit=limit, cursor=cursor)
        seen += [run.id for run in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_a_devices_runs_page_newest_first_with_ties_and_filters(lab: Any) -> None:
    bench, other = lab.add_device("bench"), lab.add_device("other")
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    runs = []
    for n in range(9):
        if n % 3:  # pairs of runs at the same instant
            lab.clock.advance(60)
        devices = [bench, other] if n % 2 else [bench]
        run = lab.start(devices, [case], environment)
        runs.append(run)
        if n != 8:
            lab.cancel_test_run(run.id, by="test")
    others_only = lab.start([other], [case], environment)  # not the bench's
    newest_first = [r.id for r in sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)]
    for limit in (1, 2, 4, 50):
        assert walk(lab, RunFilter(device_id=bench.id), limit) == newest_first
    middle = runs[4].created_at
    aborted_since = RunFilter(device_id=bench.id, status=RunStatus.ABORTED, created_from=middle)
    assert walk(lab, aborted_since, 2) == [
        r for r in newest_first if r != runs[8].id and lab.get_test_run(r).created_at >= middle
    ]
    # with the filters that look at the run's other bookings and cases
    of_other = sorted(
        [r for r in runs if other.id in r.device_ids] + [others_only],
        key=lambda r: (r.created_at, r.id),
        reverse=True,
    )
    both = RunFilter(device_id=other.id, firmware="", test_case_id=case.id)
    assert walk(lab, both, 3) == [r.id for r in of_other]
    until = RunFilter(device_id=other.id, created_to=middle)
    assert walk(lab, until, 1) == [r.id for r in of_other if r.created_at <= middle]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_migration_0003_copies_the_run_time_onto_existing_bookings(
    database_url: str, lab: Any
) -> None:
    device = lab.add_device("meter")
    run = lab.start([device], [lab.add_test_case("voltage")], lab.add_environment())
    lab.engine.dispose()
    downgrade_schema(database_url, "0002")
    upgrade_schema(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            bookings = tables.test_run_devices
            (copied,) = connection.execute(
                sa.select(bookings.c.run_created_at).where(bookings.c.run_id == run.id)
            ).one()
    finally:
        engine.dispose()
    assert lab.list_test_runs(RunFilter(device_id=device.id)).items[0].id == run.id
    assert copied == run.created_at
