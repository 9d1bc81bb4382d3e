"""Export: the run history as CSV (what GET /api/test-runs.csv streams) from 10k and from 100k
finished runs on PostgreSQL, through the same use case and CSV writer the endpoint uses,
without HTTP. The figures: rows per second, and the peak of Python memory allocated while the
whole export is written to a sink (tracemalloc). The target is bounded memory: the peak at
100k runs within 1.5 times of the peak at 10k (a list of every run would be ten times as large)."""

from __future__ import annotations

import time
import tracemalloc

from adapters.http.run_exports import csv_chunks
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import RunFilter
from application.use_cases.run_exports import ExportTestRuns
from bench import bulk
from bench.stack import Databases, Figure, Results


def _export(url: str) -> tuple[int, float, float]:
    """(bytes written, seconds, peak MiB allocated while exporting): timed in one pass,
    traced in a second (tracemalloc slows every allocation down)."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    export = ExportTestRuns(lambda read_only=False: SqlAlchemyUnitOfWork(sessions, read_only))
    try:
        began = time.monotonic()
        written = sum(len(chunk) for chunk in csv_chunks(export(RunFilter())))
        took = time.monotonic() - began
        tracemalloc.start()
        for _ in csv_chunks(export(RunFilter())):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        engine.dispose()
    return written, took, peak / 2**20


def run(results: Results, databases: Databases, quick: bool = False) -> None:
    sizes = (2_000, 20_000) if quick else (10_000, 100_000)
    peaks = {}
    for runs in sizes:
        url = databases.create(f"export{runs}")
        upgrade_schema(url)
        bulk.load_catalog(url, 1_000)
        bulk.load_runs(url, runs, 1_000)
        written, took, peaks[runs] = _export(url)
        results.add(
            Figure(
                "export",
                f"CSV of {runs:,} runs (one row each)",
                runs / took,
                "rows/s",
                notes=f"{written / 2**20:.1f} MiB in {took:.1f} s, peak {peaks[runs]:.1f} MiB",
            )
        )
    small, big = sizes
    results.add(
        Figure(
            "export",
            f"peak memory exporting {big:,} runs",
            peaks[big],
            "MiB",
            ceiling=peaks[small],
            ceiling_name=f"the same for {small:,} runs",
            target="≤ 1.5 times (ratio ≤ 150 %)",
            met=peaks[big] <= 1.5 * peaks[small],
        )
    )
