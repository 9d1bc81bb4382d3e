"""What the benchmarks stand on: a database of their own on the local PostgreSQL, broker names
of their own on the local RabbitMQ, devicelab's processes (tests/support/deployment.py), and the
load tools (wrk, pgbench). Everything talks to 127.0.0.1 only."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests.support.deployment import Deployment

POSTGRES_URL = os.environ.get(
    "DEVICELAB_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
RABBITMQ_URL = os.environ.get("DEVICELAB_BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


@dataclass
class Figure:
    """One line of the results table."""

    benchmark: str
    metric: str
    value: float
    unit: str
    ceiling: float | None = None
    ceiling_name: str = ""
    target: str = ""
    met: bool | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ceiling in (None, 0):
            return None
        return self.value / self.ceiling


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    explains: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(format_figure(figure), flush=True)
        return figure


def format_figure(f: Figure) -> str:
    ceiling = f"{f.ceiling:,.1f} ({f.ceiling_name})" if f.ceiling is not None else "—"
    ratio = f"{f.ratio:.0%}" if f.ratio is not None else "—"
    verdict = {True: "met", False: "MISSED", None: ""}[f.met]
    return (
        f"[{f.benchmark}] {f.metric}: {f.value:,.2f} {f.unit} | ceiling {ceiling} | ratio {ratio}"
        f" | target {f.target or '—'} {verdict}"
    )


# -- PostgreSQL ------------------------------------------------------------------------------


class Databases:
    """Creates databases of the benchmark's own and drops them at the end."""

    def __init__(self, url: str = POSTGRES_URL) -> None:
        self.url = make_url(url)
        self.admin = sa.create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self, purpose: str) -> str:
        name = f"devicelab_bench_{purpose}_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in self.created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()
        self.admin.dispose()


def libpq_url(url: str) -> str:
    """postgresql+psycopg2://… → postgresql://… for pgbench and psql."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# -- devicelab's processes ---------------------------------------------------------------------


@contextmanager
def devicelab(
    databases: Databases, runners: int = 0, workers: int = 2, **env: str
) -> Iterator[Deployment]:
    """API (gunicorn, DEVICELAB_WORKERS x 16 threads), worker, `runners` reference runners with
    the zero-duration simulate executor, on a fresh PostgreSQL database and broker names of
    their own."""
    from adapters.persistence.schema import upgrade_schema

    database_url = databases.create("lab")
    upgrade_schema(database_url)
    suffix = uuid.uuid4().hex[:8]
    names = {
        "DEVICELAB_EXCHANGE": f"bench.{suffix}",
        "DEVICELAB_JOB_QUEUE": f"bench.{suffix}.jobs",
        "DEVICELAB_DEAD_LETTER_QUEUE": f"bench.{suffix}.dead",
        "DEVICELAB_CONTROL_EXCHANGE": f"bench.{suffix}.control",
    }
    home = Path(tempfile.mkdtemp(prefix="devicelab-bench-"))
    deployment = Deployment(
        home,
        DEVICELAB_DATABASE_URL=database_url,
        DEVICELAB_BROKER_URL=RABBITMQ_URL,
        DEVICELAB_WORKERS=str(workers),
        DEVICELAB_RUNNER_TIME_FACTOR="0",
        DEVICELAB_LOG_LEVEL="WARNING",
        **names,
        **env,
    )
    deployment.env.pop("DEVICELAB_RELAY_INTERVAL_S", None)  # the test helper's: bench the default
    deployment.database_url = database_url
    try:
        deployment.start(runners=runners)
        yield deployment
    finally:
        deployment.stop()
        _delete_broker_names(names)
        shutil.rmtree(home, ignore_errors=True)


def _delete_broker_names(names: dict[str, str]) -> None:
    from kombu import Connection

    with Connection(RABBITMQ_URL) as connection:
        channel = connection.channel()
        for queue in (names["DEVICELAB_JOB_QUEUE"], names["DEVICELAB_DEAD_LETTER_QUEUE"]):
            channel.queue_delete(queue)
        for exchange in (names["DEVICELAB_EXCHANGE"], names["DEVICELAB_CONTROL_EXCHANGE"]):
            channel.exchange_delete(exchange)


def worker_rss_mb(master_pid: int) -> list[float]:
    """Resident memory of each gunicorn worker (the children of the master process)."""
    sizes = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(master_pid):
            sizes.append(int(fields["VmRSS"].split()[0]) / 1024)
    return sorted(sizes)


# -- wrk ---------------------------------------------------------------------------------------


@dataclass
class WrkReport:
    requests: int
    seconds: float
    requests_per_s: float
    non_2xx: int
    errors: str
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def ok_per_s(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def wrk(
    url: str,
    seconds: int,
    connections: int = 16,
    threads: int = 2,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
) -> WrkReport:
    assert url.startswith("http://127.0.0.1:"), "load only ever goes to this machine"
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.MULTILINE))
    if not {"50", "90", "99"} <= set(percentiles):
        raise RuntimeError(f"wrk said:\n{out}")
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    seconds_taken = _ms(f"{total.group(2)}{total.group(3)}") / 1000
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return WrkReport(
        requests=int(total.group(1)),
        seconds=seconds_taken,
        requests_per_s=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=errors.group(1) if errors else "",
        p50_ms=_ms(percentiles["50"]),
        p90_ms=_ms(percentiles["90"]),
        p99_ms=_ms(percentiles["99"]),
    )


# -- pgbench -----------------------------------------------------------------------------------


def pgbench_tps(databases: Databases, clients: int, seconds: int, scale: int = 10) -> float:
    """TPC-B-like tps (pgbench's default script) on a database of its own, same server."""
    url = libpq_url(databases.create("pgbench"))
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", str(scale), url], check=True, capture_output=True, timeout=600
    )
    out = subprocess.run(
        ["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), url],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    ).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def machine() -> str:
    cores = os.cpu_count()
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    load = Path("/proc/loadavg").read_text().split()[:3]
    return f"{cores} cores, {memory_kb / 1024 / 1024:.0f} GiB RAM, load average {' '.join(load)}"
