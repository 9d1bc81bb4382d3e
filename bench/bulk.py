"""A fast bulk loader for the benchmarks: devices, finished runs and their results written with
PostgreSQL's COPY (not through the API), in the shapes the repositories read back.

The lab it builds is deterministic for a given size: `devices` meters over 20 firmware
versions, four test cases, two environments, and `runs` finished runs spread evenly over the
365 days before NOW, each on one device with one test case and its result: 90 % completed
(80 % of those pass), 6 % failed, 4 % aborted. Every tenth run is on one of ten busy benches
(devices 0-9, 1 % of all runs each); the others go round robin over all devices."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from domain.names import name_key

NOW = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=365)
FIRMWARES = [f"2.{n // 5}.{n % 5}" for n in range(20)]
CASES = [
    ("voltage", "voltage", "<=", 253.0, "V"),
    ("standby power", "power", "<", 2.0, "W"),
    ("frequency", "frequency", ">=", 49.5, "Hz"),
    ("current", "current", "<=", 16.0, "A"),
]
ENVIRONMENTS = ["climate chamber 40 °C", "bench A"]
CHUNK = 50_000


def _uuid(kind: int, n: int) -> str:
    return str(uuid.UUID(int=(kind << 96) | n, version=4))


def device_id(n: int) -> str:
    return _uuid(1, n)


def run_id(n: int) -> str:
    return _uuid(2, n)


def case_id(n: int) -> str:
    return _uuid(3, n)


def environment_id(n: int) -> str:
    return _uuid(4, n)


BUSY_DEVICES = 10


def device_of(run: int, devices: int) -> int:
    return (run // 10) % BUSY_DEVICES if run % 10 == 0 else run % devices


def firmware_of(device: int) -> str:
    return FIRMWARES[device % len(FIRMWARES)]


def _copy(connection, table: str, columns: list[str], rows: Iterator[list]) -> int:
    """COPY rows (lists of Python values) into table, CHUNK rows at a time."""
    cursor = connection.connection.dbapi_connection.cursor()
    total = 0
    buffer = io.StringIO()
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"

    def flush() -> None:
        buffer.seek(0)
        cursor.copy_expert(statement, buffer)
        buffer.seek(0)
        buffer.truncate()

    for row in rows:
        buffer.write("\t".join(_text(v) for v in row))
        buffer.write("\n")
        total += 1
        if total % CHUNK == 0:
            flush()
    flush()
    return total


def _text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"))
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _case_snapshot(n: int) -> dict:
    name, metric, condition, threshold, unit = CASES[n]
    return {
        "id": case_id(n),
        "version": 1,
        "name": name,
        "description": "",
        "criteria": [
            {"metric": metric, "condition": condition, "threshold": threshold, "unit": unit}
        ],
        "duration_s": 60,
        "timeout_s": 300,
        "parameters": {},
        "tags": ["bench"],
    }


def _environment_snapshot(n: int) -> dict:
    return {"id": environment_id(n), "name": ENVIRONMENTS[n], "description": "", "variables": {}}


def _device_snapshot(n: int) -> dict:
    return {
        "id": device_id(n),
        "name": f"meter-{n:05d}",
        "model": "EM-340",
        "serial": f"SN{n:08d}",
        "firmware_version": firmware_of(n),
        "labels": {},
    }


def load_catalog(url: str, devices: int) -> None:
    """Devices (all available), the four test cases and the two environments."""
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        _copy(
            connection,
            "devices",
            [
                "id",
                "name",
                "name_key",
                "model",
                "serial",
                "firmware_version",
                "location",
                "held_by",
                "service_state",
                "status",
                "last_seen_at",
                "created_at",
                "updated_at",
                "version",
            ],
            (
                [
                    device_id(n),
                    f"meter-{n:05d}",
                    name_key(f"meter-{n:05d}"),
                    "EM-340",
                    f"SN{n:08d}",
                    firmware_of(n),
                    "bench",
                    None,
                    "in_service",
                    "available",
                    None,
                    NOW,
                    NOW,
                    1,
                ]
                for n in range(devices)
            ),
        )
        for n in range(len(CASES)):
            snapshot = _case_snapshot(n)
            connection.execute(
                sa.text(
                    "INSERT INTO test_cases (id, name, name_key, description, criteria, duration_s, "
                    "timeout_s, default_parameters, tags, execution, version, created_at, "
                    "updated_at) VALUES (:id, :name, :name_key, '', CAST(:criteria AS jsonb), 60, 300, '{}', "
                    '\'["bench"]\', \'{"executor": "", "command": [], "per_device": true}\', '
                    "1, :now, :now)"
                ),
                {
                    **snapshot,
                    "name_key": name_key(snapshot["name"]),
                    "criteria": json.dumps(snapshot["criteria"]),
                    "now": NOW,
                },
            )
        for n, name in enumerate(ENVIRONMENTS):
            connection.execute(
                sa.text(
                    "INSERT INTO environments (id, name, name_key, description, variables, "
                    "created_at, updated_at) VALUES (:id, :name, :name_key, '', '{}', :now, :now)"
                ),
                {"id": environment_id(n), "name": name, "name_key": name_key(name), "now": NOW},
            )
    engine.dispose()


def _status(n: int) -> tuple[str, str | None, str]:
    bucket = n % 50
    if bucket < 3:  # 6 %
        return "failed", None, "the runner could not reach the meter"
    if bucket < 5:  # 4 %
        return "aborted", None, ""
    return "completed", ("fail" if bucket % 5 == 0 else "pass"), ""


def load_runs(url: str, runs: int, devices: int) -> None:
    """`runs` finished runs with their case, device and (for completed runs) result rows."""
    step = SPAN / runs
    cases = [_case_snapshot(n) for n in range(len(CASES))]
    environments = [_environment_snapshot(n) for n in range(len(ENVIRONMENTS))]

    def created(n: int) -> datetime:
        return NOW - SPAN + step * n

    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        _copy(
            connection,
            "test_runs",
            [
                "id",
                "status",
                "verdict",
                "environment_id",
                "environment",
                "parameters",
                "started_by",
                "created_at",
                "started_at",
                "finished_at",
                "deadline",
                "failure_reason",
                "progress",
                "progress_message",
                "last_report_at",
                "runner",
                "version",
            ],
            (
                [
                    run_id(n),
                    *_status(n)[:2],
                    environment_id(n % 2),
                    environments[n % 2],
                    {},
                    "bench",
                    created(n),
                    created(n) + timedelta(seconds=2),
                    created(n) + timedelta(seconds=62),
                    created(n) + timedelta(seconds=900),
                    _status(n)[2],
                    1.0,
                    "",
                    created(n) + timedelta(seconds=62),
                    "runner-0",
                    4,
                ]
                for n in range(runs)
            ),
        )
        _copy(
            connection,
            "test_run_cases",
            ["run_id", "position", "test_case_id", "version", "snapshot"],
            ([run_id(n), 0, case_id(n % 4), 1, cases[n % 4]] for n in range(runs)),
        )
        _copy(
            connection,
            "test_run_devices",
            ["run_id", "position", "device_id", "firmware_version", "snapshot", "run_created_at"],
            (
                [
                    run_id(n),
                    0,
                    device_id(device_of(n, devices)),
                    firmware_of(device_of(n, devices)),
                    _device_snapshot(device_of(n, devices)),
                    created(n),
                ]
                for n in range(runs)
            ),
        )
        _copy(
            connection,
            "test_run_results",
            [
                "run_id",
                "test_case_id",
                "device_id",
                "verdict",
                "measurements",
                "message",
                "started_at",
                "finished_at",
            ],
            (
                [
                    run_id(n),
                    case_id(n % 4),
                    device_id(device_of(n, devices)),
                    _status(n)[1],
                    [_measurement(n)],
                    "",
                    created(n) + timedelta(seconds=2),
                    created(n) + timedelta(seconds=62),
                ]
                for n in range(runs)
                if _status(n)[0] == "completed"
            ),
        )
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    engine.dispose()


def _measurement(n: int) -> dict:
    _, metric, condition, threshold, unit = CASES[n % 4]
    passed = _status(n)[1] == "pass"
    value = threshold * (0.9 if passed == (condition in ("<", "<=")) else 1.1)
    return {
        "metric": metric,
        "condition": condition,
        "threshold": threshold,
        "unit": unit,
        "value": value,
        "passed": passed,
    }
