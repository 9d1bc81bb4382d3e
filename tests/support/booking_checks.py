"""SQL checks that no device was ever booked twice, for the race, load and fault tests.

`live_violations` looks at one snapshot (run it while the lab is busy); `history_violations`
reads a device's whole status history afterwards. Both return the offending rows: [] is good."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Query = Callable[..., list[Any]]

# one statement each, so each sees one consistent snapshot of the database
LIVE_CHECKS = {
    "device in two unfinished runs": (
        "SELECT b.device_id, count(*) FROM test_run_devices b "
        "JOIN test_runs r ON r.id = b.run_id WHERE r.status IN ('queued', 'running') "
        "GROUP BY b.device_id HAVING count(*) > 1"
    ),
    "device of an unfinished run held by another run or by none": (
        "SELECT b.device_id, d.held_by, r.id FROM test_run_devices b "
        "JOIN test_runs r ON r.id = b.run_id JOIN devices d ON d.id = b.device_id "
        "WHERE r.status IN ('queued', 'running') AND d.held_by IS DISTINCT FROM r.id"
    ),
    "device still held by a finished (or missing) run": (
        "SELECT d.id, d.held_by, r.status FROM devices d LEFT JOIN test_runs r ON r.id = d.held_by "
        "WHERE d.held_by IS NOT NULL AND (r.id IS NULL OR r.status NOT IN ('queued', 'running'))"
    ),
    "status and holder disagree": (
        "SELECT id, status, held_by FROM devices WHERE (status = 'in_test') <> (held_by IS NOT NULL)"
    ),
}

# Per device, in the order the rows were written (the device's row lock orders them):
# reserved by run R (to in_test), then released by the same R (from in_test), and so on.
HISTORY_CHECK = (
    "SELECT device_id, id, from_status, to_status, run_id, previous_to, previous_run FROM ("
    "  SELECT device_id, id, from_status, to_status, run_id,"
    "         lag(to_status) OVER w AS previous_to, lag(run_id) OVER w AS previous_run"
    "  FROM device_status_changes WINDOW w AS (PARTITION BY device_id ORDER BY id)"
    ") h WHERE (to_status = 'in_test' AND previous_to = 'in_test')"
    "   OR (from_status = 'in_test' AND (previous_to IS DISTINCT FROM 'in_test'"
    "       OR previous_run IS DISTINCT FROM run_id))"
)


def live_violations(rows: Query) -> dict[str, list[Any]]:
    found = {name: rows(sql) for name, sql in LIVE_CHECKS.items()}
    return {name: hits for name, hits in found.items() if hits}


def history_violations(rows: Query) -> list[Any]:
    """Reservations and releases out of turn, plus reservations with no booking behind them."""
    broken = list(rows(HISTORY_CHECK))
    reservations = rows("SELECT count(*) FROM device_status_changes WHERE to_status = 'in_test'")
    bookings = rows("SELECT count(*) FROM test_run_devices")
    if reservations != bookings:
        broken.append(("reservations", reservations, "bookings", bookings))
    return broken
