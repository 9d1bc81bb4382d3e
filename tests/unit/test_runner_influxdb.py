"""InfluxDB 1.x: InfluxQL quoting, line-protocol escaping, the influxdb executor and the
metrics writer against a fake /query and /write on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.clocks import SettableClock
from adapters.runner.executors import InfluxDBExecutor
from adapters.runner.influxdb import (
    InfluxDB,
    InfluxMetricsWriter,
    line,
    mean_query,
    quote_identifier,
    quote_string,
)
from application.runner import ExecutionRequest
from domain.test_runs import Observation, ResultReport
from tests.support.runner import T0, make_run


class FakeInflux:
    def __init__(self) -> None:
        self.means: dict[tuple[str, str], float] = {}  # (metric, device id) -> mean
        self.queries: list[dict[str, str]] = []
        self.writes: list[tuple[dict[str, str], str]] = []
        self.status = 200
        self.url = ""

    def answer_query(self, params: dict[str, str]) -> dict[str, Any]:
        results = []
        for index, statement in enumerate(params["q"].split(";")):
            found = [
                value
                for (metric, device_id), value in self.means.items()
                if quote_identifier(metric) in statement and quote_string(device_id) in statement
            ]
            result: dict[str, Any] = {"statement_id": index}
            if found:
                result["series"] = [
                    {"name": "m", "columns": ["time", "mean"], "values": [[0, found[0]]]}
                ]
            results.append(result)
        return {"results": results}


@contextmanager
def fake_influx() -> Iterator[FakeInflux]:
    fake = FakeInflux()

    class Handler(BaseHTTPRequestHandler):
        def _params(self) -> dict[str, str]:
            return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            params = self._params()
            fake.queries.append(params)
            if fake.status != 200:
                self._send(fake.status, {"error": "database not found"})
                return
            self._send(200, fake.answer_query(params))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            fake.writes.append((self._params(), self.rfile.read(length).decode()))
            self._send(204, None)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


# -- quoting and escaping ------------------------------------------------------------------------


def test_identifiers_and_strings_are_quoted_and_escaped():
    assert quote_identifier('power "L1"') == '"power \\"L1\\""'
    assert quote_string("o'brien\\x") == "'o\\'brien\\\\x'"


def test_a_mean_query_cannot_be_broken_out_of():
    query = mean_query(
        'voltage" ; DROP DATABASE "lab', "dev' OR ''='", T0, T0 + timedelta(seconds=30)
    )
    assert query == (
        'SELECT mean("value") FROM "voltage\\" ; DROP DATABASE \\"lab" '
        "WHERE \"device_id\" = 'dev\\' OR \\'\\'=\\'' "
        "AND time >= '2026-03-01T08:00:00.000000Z' AND time <= '2026-03-01T08:00:30.000000Z'"
    )


def test_line_protocol_escapes_measurement_tags_and_fields():
    point = line(
        "runner metrics,v1",
        {"run_id": "run 1", "device_id": "a=b,c", "unit": "", "note": "two\nlines"},
        {"value": 231.5},
        T0 + timedelta(microseconds=7),
    )
    assert point == (
        "runner\\ metrics\\,v1,device_id=a\\=b\\,c,note=two\\ lines,run_id=run\\ 1 "
        "value=231.5 1772352000000007000"
    )


# -- the executor ----------------------------------------------------------------------------------


def request_for(run) -> ExecutionRequest:
    case = run.test_cases[0]
    return ExecutionRequest(run.id, case, run.devices, run.environment, case.parameters)


def execute(influx, run, clock=None):
    clock = clock or SettableClock(T0)
    executor = InfluxDBExecutor(influx, clock, time_factor=0)
    partials: list = []
    return executor.execute(request_for(run), threading.Event(), partials.append), partials


def test_the_executor_reads_the_mean_of_each_metric_per_device():
    run = make_run(criteria=[("voltage", "<=", 240), ("current", "<", 16)], duration_s=60)
    with fake_influx() as fake:
        fake.means = {("voltage", "dev-1"): 231.2, ("current", "dev-1"): 9.5}
        fake.means[("voltage", "dev-2")] = 244.0
        results, partials = execute(InfluxDB(fake.url, "lab"), run)

    assert partials == results
    first, second = results
    assert {(o.metric, o.value) for o in first.observations} == {
        ("voltage", 231.2),
        ("current", 9.5),
    }
    assert not first.error
    # no current for dev-2: unmeasured (inconclusive), not an error
    assert [(o.metric, o.value) for o in second.observations] == [("voltage", 244.0)]
    assert not second.error and "no data for current" in second.message
    assert {q["db"] for q in fake.queries} == {"lab"}
    assert len(fake.queries) == 2  # one request per device, one statement per metric


def test_a_window_parameter_looks_back_from_the_end():
    run = make_run(parameters={"influx_window_s": 900})
    with fake_influx() as fake:
        execute(InfluxDB(fake.url, "lab"), run)
    statement = fake.queries[0]["q"]
    assert "time >= '2026-03-01T07:45:00.000000Z' AND time <= '2026-03-01T08:00:00.000000Z'" in (
        statement
    )


def test_an_influx_error_is_an_error_result():
    run = make_run(devices=1)
    with fake_influx() as fake:
        fake.status = 404
        (result,), _ = execute(InfluxDB(fake.url, "nope"), run)
    assert result.error
    assert "404" in result.message and "database not found" in result.message


def test_without_an_influx_url_the_executor_cannot_run():
    with pytest.raises(RuntimeError, match="DEVICELAB_INFLUX_URL"):
        execute(None, make_run())


# -- the metrics writer --------------------------------------------------------------------------------


def test_the_metrics_writer_writes_one_tagged_point_per_measurement():
    result = ResultReport(
        "case-1",
        "dev-1",
        (Observation("voltage", 231.5, "V"), Observation("current", 9.0, "A")),
        finished_at=T0,
    )
    with fake_influx() as fake:
        InfluxMetricsWriter(InfluxDB(fake.url, "lab")).write("run-1", [result])

    ((params, body),) = fake.writes
    assert params == {"db": "lab", "precision": "ns"}
    assert body.splitlines() == [
        "devicelab_runner,device_id=dev-1,metric=voltage,run_id=run-1,test_case_id=case-1,unit=V "
        "value=231.5 1772352000000000000",
        "devicelab_runner,device_id=dev-1,metric=current,run_id=run-1,test_case_id=case-1,unit=A "
        "value=9.0 1772352000000000000",
    ]
