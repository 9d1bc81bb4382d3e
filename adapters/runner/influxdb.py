"""InfluxDB 1.x over its HTTP API: mean values of a device's metric over a time window
(`/query`, InfluxQL), and the runner's own measurements as line protocol (`/write`)."""

from __future__ import annotations

import base64
import json
import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime

from domain.test_runs import ResultReport

log = logging.getLogger(__name__)


class InfluxError(Exception):
    pass


# -- InfluxQL quoting -----------------------------------------------------------------------


def quote_identifier(name: str) -> str:
    """A measurement, tag or field name inside double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """A string literal inside single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_time(at: datetime) -> str:
    return quote_string(at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def mean_query(
    metric: str,
    device_id: str,
    start: datetime,
    end: datetime,
    device_tag: str = "device_id",
    field: str = "value",
) -> str:
    return (
        f"SELECT mean({quote_identifier(field)}) FROM {quote_identifier(metric)} "
        f"WHERE {quote_identifier(device_tag)} = {quote_string(device_id)} "
        f"AND time >= {quote_time(start)} AND time <= {quote_time(end)}"
    )


# -- line protocol -----------------------------------------------------------------------------


def _escape(text: str, specials: str) -> str:
    text = text.replace("\n", " ").replace("\r", " ")
    for special in specials:
        text = text.replace(special, "\\" + special)
    return text


def escape_measurement(name: str) -> str:
    return _escape(name, ", ")


def escape_key(text: str) -> str:
    """Tag keys, tag values and field keys."""
    return _escape(text, ",= ")


def line(measurement: str, tags: dict[str, str], fields: dict[str, float], at: datetime) -> str:
    """One point in line protocol; empty tag values are left out (the protocol has none)."""
    tag_part = "".join(
        f",{escape_key(key)}={escape_key(value)}" for key, value in sorted(tags.items()) if value
    )
    field_part = ",".join(f"{escape_key(key)}={float(value)!r}" for key, value in fields.items())
    nanoseconds = int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000
    return f"{escape_measurement(measurement)}{tag_part} {field_part} {nanoseconds}"


# -- the HTTP API --------------------------------------------------------------------------------


class InfluxDB:
    def __init__(
        self,
        url: str,
        database: str,
        username: str = "",
        password: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.timeout_s = timeout_s
        self._headers = {"Accept": "application/json"}
        if username:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"

    def means(
        self,
        metrics: Sequence[str],
        device_id: str,
        start: datetime,
        end: datetime,
        device_tag: str = "device_id",
    ) -> dict[str, float | None]:
        """The mean of each metric of one device over [start, end]; None where there is no
        data. One request, one statement per metric."""
        if not metrics:
            return {}
        statements = [mean_query(m, device_id, start, end, device_tag) for m in metrics]
        query = urllib.parse.urlencode(
            {"db": self.database, "q": ";".join(statements), "epoch": "ms"}
        )
        answer = self._request(urllib.request.Request(f"{self.url}/query?{query}"))
        try:
            results = json.loads(answer)["results"]
        except (ValueError, KeyError, TypeError) as error:
            raise InfluxError(f"unexpected answer from InfluxDB: {answer[:200]!r}") from error
        means: dict[str, float | None] = dict.fromkeys(metrics)
        for result in results:
            index = result.get("statement_id", 0)
            if not isinstance(index, int) or not 0 <= index < len(metrics):
                continue
            if "error" in result:
                raise InfluxError(f"query for {metrics[index]!r} failed: {result['error']}")
            means[metrics[index]] = _mean_of(result)
        return means

    def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        query = urllib.parse.urlencode({"db": self.database, "precision": "ns"})
        request = urllib.request.Request(
            f"{self.url}/write?{query}",
            data="\n".join(lines).encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
            method="POST",
        )
        self._request(request)

    def _request(self, request: urllib.request.Request) -> str:
        for name, value in self._headers.items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:300]
            raise InfluxError(f"InfluxDB answered {error.code}: {detail}") from None
        except (OSError, ValueError) as error:
            raise InfluxError(f"InfluxDB at {self.url} unreachable: {error}") from None


def _mean_of(result: dict) -> float | None:
    for series in result.get("series") or []:
        columns = series.get("columns") or []
        if "mean" not in columns:
            continue
        column = columns.index("mean")
        for row in series.get("values") or []:
            value = row[column] if column < len(row) else None
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                return float(value)
    return None


class InfluxMetricsWriter:
    """Writes each measurement a runner reports as one point, tagged with the run, device,
    test case, metric and unit (the measurement name is distinct from the devices' own
    telemetry, so the `influxdb` executor never reads the runner's copies back)."""

    def __init__(self, influx: InfluxDB, measurement: str = "devicelab_runner") -> None:
        self.influx, self.measurement = influx, measurement

    def write(self, run_id: str, results: Sequence[ResultReport]) -> None:
        lines = []
        for result in results:
            at = result.finished_at or datetime.now(UTC)
            for observation in result.observations:
                tags = {
                    "run_id": run_id,
                    "device_id": result.device_id,
                    "test_case_id": result.test_case_id,
                    "metric": observation.metric,
                    "unit": observation.unit,
                }
                lines.append(line(self.measurement, tags, {"value": observation.value}, at))
        self.influx.write(lines)
