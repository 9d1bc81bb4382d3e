"""Twenty engineers start runs on overlapping devices at the same instant, a hundred rounds in
a row, on PostgreSQL: no device is ever booked twice. Checked by SQL after every round (no
device in two unfinished runs, every held device held by its run) and over the whole history
at the end (per device, each reservation is released by the same run before the next one)."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from application.use_cases.test_runs import StartTestRunRequest
from domain.errors import DeviceUnavailable

STARTERS = 20
ROUNDS = 100
DEVICES = 12


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_twenty_parallel_starts_a_hundred_rounds_never_double_book(lab: Any) -> None:
    devices = [lab.add_device(f"meter-{n:02d}").id for n in range(DEVICES)]
    case = lab.add_test_case("voltage").id
    environment = lab.add_environment().id
    pick = random.Random(20261127)
    booked = refused = 0
    for round_number in range(ROUNDS):
        wanted = [pick.sample(devices, pick.randint(1, 3)) for _ in range(STARTERS)]
        outcomes = _all_at_once(
            [
                (lambda ids=ids: lab.start_test_run(StartTestRunRequest([case], environment, ids)))
                for ids in wanted
            ]
        )
        unexpected = [o for o in outcomes if isinstance(o, Exception) and not _lost(o)]
        assert unexpected == [], f"round {round_number}: {unexpected}"
        winners = [o for o in outcomes if not isinstance(o, Exception)]
        booked += len(winners)
        refused += len(outcomes) - len(winners)
        _assert_no_double_booking(lab, round_number)
        for run in winners:
            lab.cancel_test_run(run.id, by="load-test")
        assert lab.scalar("SELECT count(*) FROM devices WHERE status <> 'available'") == 0
    # the race really happened: both outcomes, many times
    assert booked >= ROUNDS and refused >= ROUNDS
    assert lab.scalar("SELECT count(*) FROM test_runs") == booked
    _assert_history_alternates(lab)


def _lost(error: Exception) -> bool:
    """A start that lost the race: the device was taken, or the database asked for a retry."""
    return isinstance(error, DeviceUnavailable) or type(error).__name__ == "ConcurrentUpdate"


def _all_at_once(calls: list[Any]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def attempt(n: int) -> None:
        barrier.wait(timeout=30)
        try:
            outcomes[n] = calls[n]()
        except Exception as error:  # asserted on by the caller
            outcomes[n] = error

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a start hung"
    return outcomes


def _assert_no_double_booking(lab: Any, round_number: int) -> None:
    twice = lab.rows(
        "SELECT b.device_id, count(*) FROM test_run_devices b "
        "JOIN test_runs r ON r.id = b.run_id WHERE r.status IN ('queued', 'running') "
        "GROUP BY b.device_id HAVING count(*) > 1"
    )
    assert twice == [], f"round {round_number}: devices in two unfinished runs: {twice}"
    wrong_holder = lab.rows(
        "SELECT b.device_id FROM test_run_devices b JOIN test_runs r ON r.id = b.run_id "
        "JOIN devices d ON d.id = b.device_id "
        "WHERE r.status IN ('queued', 'running') AND d.held_by IS DISTINCT FROM r.id"
    )
    assert wrong_holder == [], f"round {round_number}: held by another run: {wrong_holder}"
    stray = lab.rows(
        "SELECT d.id FROM devices d LEFT JOIN test_runs r ON r.id = d.held_by "
        "WHERE d.held_by IS NOT NULL AND (r.id IS NULL OR r.status NOT IN ('queued', 'running'))"
    )
    assert stray == [], f"round {round_number}: held by no live run: {stray}"


def _assert_history_alternates(lab: Any) -> None:
    """Per device, in the order they were written (the device's row lock orders them):
    in_test by run R, then back from in_test by the same R, and so on."""
    broken = lab.rows(
        "SELECT device_id, id FROM ("
        "  SELECT device_id, id, from_status, to_status, run_id,"
        "         lag(to_status) OVER w AS previous_to, lag(run_id) OVER w AS previous_run"
        "  FROM device_status_changes WINDOW w AS (PARTITION BY device_id ORDER BY id)"
        ") h WHERE (to_status = 'in_test' AND previous_to = 'in_test')"
        "   OR (from_status = 'in_test' AND (previous_to IS DISTINCT FROM 'in_test'"
        "       OR previous_run IS DISTINCT FROM run_id))"
    )
    assert broken == []
    reservations = lab.scalar(
        "SELECT count(*) FROM device_status_changes WHERE to_status = 'in_test'"
    )
    assert reservations == lab.scalar("SELECT count(*) FROM test_run_devices")
