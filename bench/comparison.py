"""Comparison at scale: `GET /api/compare` for two firmware versions, tracked regressions and
the firmware versions list, through the use cases the API calls, on PostgreSQL with `runs`
bulk-loaded runs (bench/bulk.py: 20 firmware versions, so one version has 5 % of the runs;
one model, four test cases, two environments). The runs are loaded before migration 0013,
which then sums up their results as on a real upgrade; its time is a figure too.

Each query is timed REPEAT times after a warm-up; the target for the comparison is a median
below 200 ms. A query that misses its target gets the EXPLAIN (ANALYZE, BUFFERS) of each of
its statements printed and written to the results, and so does the windowed comparison
(`EXPLAINED`) always."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import event

from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.use_cases.comparison import (
    CompareRequest,
    CompareResults,
    ListFirmwareVersions,
    ListRegressions,
    RegressionsRequest,
)
from bench import bulk
from bench.stack import Databases, Figure, Results

REPEAT = 15
TARGET_MS = 200.0
# its plans are printed and written even when it meets its target: the day sums' range scan
# and the edge days' reads (docs/comparison.md)
EXPLAINED = "compare: two firmware versions, 30 days from noon to noon"


def queries(uow) -> dict[str, tuple[Callable[[], object], float | None]]:
    """name -> (the call, its target in ms or None: measured, no target set)."""
    compare, regressions = CompareResults(uow), ListRegressions(uow)
    base, target = bulk.FIRMWARES[3], bulk.FIRMWARES[4]
    month_to = bulk.NOW
    month_from = month_to - timedelta(days=30)
    return {
        "compare: two firmware versions": (
            lambda: compare(CompareRequest(base, target)),
            TARGET_MS,
        ),
        "compare: two firmware versions, last 30 days": (
            lambda: compare(
                CompareRequest(base, target, created_from=month_from, created_to=month_to)
            ),
            TARGET_MS,
        ),
        "compare: two firmware versions, 30 days from noon to noon": (
            lambda: compare(
                CompareRequest(
                    base,
                    target,
                    created_from=month_from - timedelta(hours=12),
                    created_to=month_to - timedelta(hours=12),
                )
            ),
            TARGET_MS,
        ),
        "compare: two runs": (
            lambda: compare(CompareRequest(base_run=bulk.run_id(5), target_run=bulk.run_id(7))),
            TARGET_MS,
        ),
        "regressions: all": (lambda: regressions(RegressionsRequest()), TARGET_MS),
        "firmware versions": (lambda: ListFirmwareVersions(uow)(), TARGET_MS),
    }


def build(databases: Databases, runs: int, devices: int) -> tuple[str, float, dict[str, float]]:
    """The bulk-loaded lab at the revision before 0013, then migrated: 0013 sums up the
    results loaded per firmware version and 0019 per day (as they do on an upgrade); both
    are timed too."""
    url = databases.create(f"compare{runs}")
    upgrade_schema(url, "0013-1")
    began = time.monotonic()
    bulk.load_catalog(url, devices)
    bulk.load_runs(url, runs, devices)
    loaded = time.monotonic()
    upgrade_schema(url, "0018")  # 0013 and the four after it (they add no rows)
    summed = time.monotonic()
    upgrade_schema(url)
    migrated = {"0013 to 0018": summed - loaded, "0019": time.monotonic() - summed}
    return url, loaded - began, migrated


def run(results: Results, databases: Databases, runs: int, devices: int) -> None:
    url, took, migrated = build(databases, runs, devices)
    print(f"[compare] loaded {devices:,} devices and {runs:,} runs in {took:.1f} s", flush=True)
    for revisions, seconds in migrated.items():
        print(f"[compare] migration {revisions}: {seconds:.1f} s", flush=True)
    results.add(
        Figure(
            "compare",
            f"migrations 0013 to 0018 (0013 sums up per firmware version) at {runs:,} runs",
            migrated["0013 to 0018"],
            "s",
        )
    )
    results.add(
        Figure(
            "compare",
            f"migration 0019: summing up the results of {runs:,} runs per day",
            migrated["0019"],
            "s",
        )
    )
    engine = make_engine(url)
    recorded: list[tuple[str, object]] | None = None

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):
        if recorded is not None:
            recorded.append((statement, parameters))

    uow = functools.partial(SqlAlchemyUnitOfWork, make_session_factory(engine))
    for name, (query, target) in queries(uow).items():
        for _ in range(2):
            query()
        samples = []
        for _ in range(REPEAT):
            began = time.perf_counter()
            query()
            samples.append((time.perf_counter() - began) * 1000)
        samples.sort()
        median = statistics.median(samples)
        met = None if target is None else median < target
        results.add(
            Figure(
                "compare",
                f"{name} at {runs:,} runs (median ms; p90 {samples[int(REPEAT * 0.9) - 1]:.1f})",
                median,
                "ms",
                target=f"< {target:g} ms" if target else "",
                met=met,
            )
        )
        print(f"[compare] {name}: median {median:.1f} ms", flush=True)
        if met is False or name == EXPLAINED:
            recorded = []
            query()
            statements, recorded = recorded, None
            plans = []
            with engine.connect() as connection:
                cursor = connection.connection.dbapi_connection.cursor()
                for statement, parameters in statements:
                    if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                        continue
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    plans.append(f"{statement}\n-- parameters: {parameters}\n{plan}")
            text = "\n\n".join(plans)
            results.explains.append(f"### {name} at {runs:,} runs\n\n```\n{text}\n```")
            print(text, flush=True)
    engine.dispose()
