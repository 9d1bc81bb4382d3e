"""Twenty engineers start runs on overlapping devices at the same instant, fifty rounds in a
row, on PostgreSQL, refusing what is busy (when_busy=reject; runs that wait instead are in
test_queue_concurrency.py): no device is ever booked twice. Checked by SQL after every round (no
device in two unfinished runs, every held device held by its run) and over the whole history
at the end (per device, each reservation is released by the same run before the next one);
the checks are in tests/support/booking_checks.py."""

from __future__ import annotations

import random
from typing import Any

import pytest

from application.use_cases.test_runs import StartTestRunRequest
from domain.errors import DeviceUnavailable
from tests.support.booking_checks import history_violations, live_violations
from tests.support.concurrency import fire_together

STARTERS = 20
ROUNDS = 50
DEVICES = 12


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_twenty_parallel_starts_fifty_rounds_never_double_book(lab: Any) -> None:
    devices = [lab.add_device(f"meter-{n:02d}").id for n in range(DEVICES)]
    case = lab.add_test_case("voltage").id
    environment = lab.add_environment().id
    pick = random.Random(20261127)
    booked = refused = 0
    for round_number in range(ROUNDS):
        wanted = [pick.sample(devices, pick.randint(1, 3)) for _ in range(STARTERS)]
        outcomes = fire_together(
            [
                (
                    lambda ids=ids: lab.start_test_run(
                        StartTestRunRequest([case], environment, ids, when_busy="reject")
                    )
                )
                for ids in wanted
            ]
        )
        unexpected = [o for o in outcomes if isinstance(o, Exception) and not _lost(o)]
        assert unexpected == [], f"round {round_number}: {unexpected}"
        winners = [o for o in outcomes if not isinstance(o, Exception)]
        booked += len(winners)
        refused += len(outcomes) - len(winners)
        assert live_violations(lab.rows) == {}, f"round {round_number}"
        for run in winners:
            lab.cancel_test_run(run.id, by="load-test")
        assert lab.scalar("SELECT count(*) FROM devices WHERE status <> 'available'") == 0
    # the race really happened: both outcomes, many times
    assert booked >= ROUNDS and refused >= ROUNDS
    assert lab.scalar("SELECT count(*) FROM test_runs") == booked
    assert history_violations(lab.rows) == []


def _lost(error: Exception) -> bool:
    """A start that lost the race: the device was taken, or the database asked for a retry."""
    return isinstance(error, DeviceUnavailable) or type(error).__name__ == "ConcurrentUpdate"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_checks_do_see_a_double_booking(lab: Any) -> None:
    devices = [lab.add_device(f"meter-{n}") for n in range(2)]
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    first = lab.start([devices[0]], [case], environment)
    second = lab.start([devices[1]], [case], environment)
    assert live_violations(lab.rows) == {} and history_violations(lab.rows) == []
    with lab.engine.begin() as connection:  # what a broken lock would leave behind
        connection.exec_driver_sql(
            f"UPDATE test_run_devices SET device_id = '{devices[0].id}' "
            f"WHERE run_id = '{second.id}'"
        )
        connection.exec_driver_sql(
            "INSERT INTO device_status_changes (device_id, at, from_status, to_status, actor, "
            f"reason, run_id) SELECT device_id, at, from_status, to_status, actor, reason, "
            f"'{second.id}' FROM device_status_changes WHERE run_id = '{first.id}'"
        )
    found = live_violations(lab.rows)
    assert "device in two unfinished runs" in found
    assert "device of an unfinished run held by another run or by none" in found
    assert history_violations(lab.rows) != []
