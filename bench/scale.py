"""Scale: list and filter latency with 10k runs vs 1M runs (10k devices in both), through the
same use cases the API calls (ListTestRuns, ListDevices) on PostgreSQL, so the figure is the
database work plus mapping rows to entities — without HTTP, which would only add a constant.

Each query is timed REPEAT times after a warm-up; the target is the median at 1M within 2x of
the median at 10k. A query that misses gets its EXPLAIN (ANALYZE, BUFFERS) printed."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import event

from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.pagination import encode_cursor
from application.ports import DeviceFilter, RunFilter
from application.use_cases.devices import ListDevices
from application.use_cases.test_runs import ListTestRuns
from bench import bulk
from bench.stack import Databases, Figure, Results
from domain.devices import DeviceStatus
from domain.test_runs import RunStatus, Verdict

REPEAT = 31
PAGE = 50


def _run_cursor(runs: int, depth: float) -> str:
    """The cursor a client holds after paging `depth` of the way through the newest-first list."""
    n = runs - 1 - int(runs * depth)
    created = bulk.NOW - bulk.SPAN + (bulk.SPAN / runs) * n
    return encode_cursor("test_runs", (created.isoformat(), bulk.run_id(n)))


def queries(runs: int, devices: int) -> dict[str, Callable[[ListTestRuns, ListDevices], object]]:
    week_to = bulk.NOW - timedelta(days=180)
    week_from = week_to - timedelta(days=7)
    firmware = bulk.FIRMWARES[3]
    busy_device = bulk.device_id(3)  # 1 % of all runs: a full page at either size
    return {
        "runs: newest page": lambda r, d: r(RunFilter(), PAGE),
        "runs: status=failed": lambda r, d: r(RunFilter(status=RunStatus.FAILED), PAGE),
        "runs: verdict=fail": lambda r, d: r(RunFilter(verdict=Verdict.FAIL), PAGE),
        "runs: device (a busy bench)": lambda r, d: r(RunFilter(device_id=busy_device), PAGE),
        "runs: firmware": lambda r, d: r(RunFilter(firmware=firmware), PAGE),
        "runs: test case": lambda r, d: r(RunFilter(test_case_id=bulk.case_id(2)), PAGE),
        "runs: date range (a week)": lambda r, d: r(
            RunFilter(created_from=week_from, created_to=week_to), PAGE
        ),
        "runs: status+firmware+date range": lambda r, d: r(
            RunFilter(
                status=RunStatus.COMPLETED,
                firmware=firmware,
                created_from=week_from - timedelta(days=60),
                created_to=week_to,
            ),
            PAGE,
        ),
        "runs: deep cursor page (90 %)": lambda r, d: r(RunFilter(), PAGE, _run_cursor(runs, 0.9)),
        "runs: deep cursor page, status=completed": lambda r, d: r(
            RunFilter(status=RunStatus.COMPLETED), PAGE, _run_cursor(runs, 0.9)
        ),
        "devices: first page": lambda r, d: d(DeviceFilter(), PAGE),
        "devices: status=available": lambda r, d: d(
            DeviceFilter(status=DeviceStatus.AVAILABLE), PAGE
        ),
        "devices: deep cursor page (90 %)": lambda r, d: d(
            DeviceFilter(),
            PAGE,
            encode_cursor(
                "devices",
                (f"meter-{int(devices * 0.9):05d}", bulk.device_id(int(devices * 0.9))),
            ),
        ),
    }


def time_both(small: Measured, big: Measured, small_query, big_query) -> tuple[list, list, int]:
    """Median-ready samples (ms) of both labs, taken alternately so that whatever else the
    machine does at the moment weighs on both alike."""
    for _ in range(3):
        small_query(small.list_runs, small.list_devices)
        big_query(big.list_runs, big.list_devices)
    samples: tuple[list[float], list[float]] = ([], [])
    items = 0
    for _ in range(REPEAT):
        for lab, query, into in ((small, small_query, samples[0]), (big, big_query, samples[1])):
            began = time.perf_counter()
            page = query(lab.list_runs, lab.list_devices)
            into.append((time.perf_counter() - began) * 1000)
            items = len(page.items)
    return sorted(samples[0]), sorted(samples[1]), items


class Measured:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        factory = make_session_factory(self.engine)
        uow = functools.partial(SqlAlchemyUnitOfWork, factory)
        self.list_runs, self.list_devices = ListTestRuns(uow), ListDevices(uow)
        self.statements: list[tuple[str, object]] | None = None

        @event.listens_for(self.engine, "before_cursor_execute")
        def _record(conn, cursor, statement, parameters, context, executemany):
            if self.statements is not None:
                self.statements.append((statement, parameters))

    def explain(self, query: Callable) -> str:
        self.statements = []
        query(self.list_runs, self.list_devices)
        recorded, self.statements = self.statements, None
        # the first statement is the list's own query; the rest load the page's details
        statement, parameters = next(
            (s, p) for s, p in recorded if s.lstrip().upper().startswith("SELECT")
        )
        with self.engine.connect() as connection:
            cursor = connection.connection.dbapi_connection.cursor()
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        return f"{statement}\n-- parameters: {parameters}\n{plan}"


def build(databases: Databases, runs: int, devices: int) -> tuple[str, float]:
    url = databases.create(f"scale{runs}")
    upgrade_schema(url)
    began = time.monotonic()
    bulk.load_catalog(url, devices)
    bulk.load_runs(url, runs, devices)
    return url, time.monotonic() - began


def run(results: Results, databases: Databases, runs: int, devices: int, small: int) -> None:
    small_url, small_s = build(databases, small, devices)
    print(f"[scale] loaded {devices:,} devices and {small:,} runs in {small_s:.1f} s", flush=True)
    big_url, big_s = build(databases, runs, devices)
    print(f"[scale] loaded {devices:,} devices and {runs:,} runs in {big_s:.1f} s", flush=True)
    results.add(
        Figure("scale", f"bulk load of {runs:,} runs with results (COPY)", runs / big_s, "runs/s")
    )
    small_lab, big_lab = Measured(small_url), Measured(big_url)
    for name, query in queries(small, devices).items():
        big_query = queries(runs, devices)[name]
        small_samples, big_samples, big_items = time_both(small_lab, big_lab, query, big_query)
        small_median = statistics.median(small_samples)
        big_median = statistics.median(big_samples)
        big_p95 = big_samples[int(len(big_samples) * 0.95) - 1]
        met = big_median <= 2 * small_median
        results.add(
            Figure(
                "scale",
                f"{name} at {runs // 1000:,}k runs (median ms; p95 {big_p95:.1f})",
                big_median,
                "ms",
                ceiling=small_median,
                ceiling_name=f"the same at {small // 1000:,}k runs",
                target="≤ 2× (ratio ≤ 200 %)",
                met=met,
                notes=f"{big_items} items",
            )
        )
        if not met:
            plan = big_lab.explain(big_query)
            results.explains.append(f"### {name} at {runs:,} runs\n\n```\n{plan}\n```")
            print(plan, flush=True)
    for lab in (small_lab, big_lab):
        lab.engine.dispose()
    with sa.create_engine(big_url).connect() as connection:
        size = connection.exec_driver_sql(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        ).scalar()
    print(f"[scale] the {runs:,}-run database takes {size}", flush=True)
