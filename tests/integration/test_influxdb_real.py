"""The runner's InfluxDB client, metrics writer and `influxdb` executor against a real
InfluxDB 1.x: Debian's `influxd` (package influxdb; `make test` installs it), started by these
tests on free 127.0.0.1 ports with a data directory of their own, with authentication on.

Without influxd the tests are skipped, except with CI=true, where they fail."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.clocks import SettableClock
from adapters.runner.executors import InfluxDBExecutor
from adapters.runner.influxdb import InfluxDB, InfluxError, InfluxMetricsWriter, line
from application.runner import ExecutionRequest
from domain.test_runs import DeviceSnapshot, Observation, ResultReport
from tests.support.runner import T0, make_run

pytestmark = pytest.mark.influxdb

ADMIN, PASSWORD = "devicelab-admin", "not-a-real-password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class InfluxServer:
    url: str
    process: subprocess.Popen
    log: Path

    def query(self, statement: str, database: str = "", auth: bool = True) -> dict[str, Any]:
        params = {"q": statement, **({"db": database} if database else {})}
        request = urllib.request.Request(
            f"{self.url}/query", data=urllib.parse.urlencode(params).encode(), method="POST"
        )
        if auth:
            token = base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def client(self, database: str, password: str = PASSWORD) -> InfluxDB:
        return InfluxDB(self.url, database, ADMIN, password)


@pytest.fixture(scope="module")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    influxd = shutil.which("influxd") or (
        "/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None
    )
    if influxd is None:
        reason = "influxd is not installed (Debian: apt-get install influxdb; `make test` does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("influxdb")
    http_port, rpc_port = _free_port(), _free_port()
    config = root / "influxdb.conf"
    config.write_text(
        f"""
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root / "meta"}"
[data]
  dir = "{root / "data"}"
  wal-dir = "{root / "wal"}"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""
    )
    log = root / "influxd.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [influxd, "run", "-config", str(config)], stdout=output, stderr=subprocess.STDOUT
        )
    server = InfluxServer(f"http://127.0.0.1:{http_port}", process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/ping", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"influxd did not start:\n{log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        # with authentication on, the first user may be created without credentials
        server.query(
            f"CREATE USER \"{ADMIN}\" WITH PASSWORD '{PASSWORD}' WITH ALL PRIVILEGES", auth=False
        )
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def database(influx_server: InfluxServer) -> Iterator[str]:
    name = f"devicelab_test_{uuid.uuid4().hex[:10]}"
    influx_server.query(f'CREATE DATABASE "{name}"')
    yield name
    influx_server.query(f'DROP DATABASE "{name}"')


def series_rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for result in answer["results"]:
        assert "error" not in result, result
        for series in result.get("series", []):
            rows += [
                dict(zip(series["columns"], values, strict=True)) for values in series["values"]
            ]
    return rows


# -- the metrics writer ------------------------------------------------------------------------


def test_the_metrics_writer_points_read_back_with_every_tag(
    influx_server: InfluxServer, database: str
) -> None:
    awkward_case = 'case "7", phase=L1'  # spaces, commas, equals signs, quotes
    results = [
        ResultReport(
            awkward_case,
            "dev-1",
            (Observation("voltage", 231.5, "V"), Observation("power factor", 0.97, "")),
            finished_at=T0,
        ),
        ResultReport("case-2", "dev 2", (Observation("voltage", 244.0, "V"),), finished_at=T0),
    ]
    InfluxMetricsWriter(influx_server.client(database)).write("run-1", results)

    rows = series_rows(
        influx_server.query('SELECT * FROM "devicelab_runner" WHERE "run_id" = \'run-1\'', database)
    )
    got = {(r["test_case_id"], r["device_id"], r["metric"], r["unit"], r["value"]) for r in rows}
    assert got == {
        (awkward_case, "dev-1", "voltage", "V", 231.5),
        (awkward_case, "dev-1", "power factor", None, 0.97),  # an empty tag is left out
        ("case-2", "dev 2", "voltage", "V", 244.0),
    }
    assert {r["time"] for r in rows} == {"2026-03-01T08:00:00Z"}


def test_a_wrong_password_is_an_influx_error(influx_server: InfluxServer, database: str) -> None:
    with pytest.raises(InfluxError, match="401"):
        influx_server.client(database, password="wrong").write([line("m", {}, {"value": 1.0}, T0)])


# -- the influxdb executor ---------------------------------------------------------------------


def _write_telemetry(client: InfluxDB, device_id: str, metric: str, values: list[float]) -> None:
    """One point per second before T0, as the devices' telemetry would arrive."""
    client.write(
        [
            line(metric, {"device_id": device_id}, {"value": v}, T0 - timedelta(seconds=n + 1))
            for n, v in enumerate(values)
        ]
    )


def test_the_executor_averages_each_devices_telemetry_over_the_window(
    influx_server: InfluxServer, database: str
) -> None:
    client = influx_server.client(database)
    quoted_id = "dev-'1\" or 1=1"  # InfluxQL quoting must hold against the real parser
    _write_telemetry(client, quoted_id, "voltage", [230.0, 232.0, 234.0])
    _write_telemetry(client, quoted_id, "current", [9.0, 11.0])
    _write_telemetry(client, "dev-2", "voltage", [250.0, 250.0])
    # outside the window: must not count
    client.write(
        [line("voltage", {"device_id": quoted_id}, {"value": 999.0}, T0 - timedelta(hours=2))]
    )

    run = make_run(criteria=[("voltage", "<=", 240), ("current", "<", 16)])
    case = run.test_cases[0]
    devices = (
        DeviceSnapshot(quoted_id, "meter-01", "M1", "S1", "1.0", {}),
        DeviceSnapshot("dev-2", "meter-02", "M1", "S2", "1.0", {}),
        DeviceSnapshot("dev-3", "meter-03", "M1", "S3", "1.0", {}),
    )
    request = ExecutionRequest(run.id, case, devices, run.environment, {"influx_window_s": 600})
    executor = InfluxDBExecutor(client, SettableClock(T0), time_factor=0)
    partials: list[ResultReport] = []
    first, second, third = executor.execute(request, threading.Event(), partials.append)

    assert partials == [first, second, third]
    assert {(o.metric, o.value) for o in first.observations} == {
        ("voltage", 232.0),
        ("current", 10.0),
    }
    assert not first.error
    assert [(o.metric, o.value) for o in second.observations] == [("voltage", 250.0)]
    assert "no data for current" in second.message
    assert third.observations == () and not third.error  # no telemetry: inconclusive


def test_an_unknown_database_is_an_error_result(influx_server: InfluxServer) -> None:
    run = make_run(devices=1, parameters={"influx_window_s": 60})
    case = run.test_cases[0]
    request = ExecutionRequest(run.id, case, run.devices, run.environment, case.parameters)
    executor = InfluxDBExecutor(influx_server.client("no_such_db"), SettableClock(T0), 0)
    (result,) = executor.execute(request, threading.Event(), lambda _: None)
    assert result.error
    assert "database not found" in result.message
