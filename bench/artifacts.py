"""Logs and artifacts on PostgreSQL, through the use cases the endpoints call (no HTTP):

- artifacts: a file of N MiB uploaded (StoreArtifact into the database store, fed 64 KiB at a
  time as the request stream would) and downloaded (OpenArtifact, read to the end), at two
  sizes. Figures: MiB/s beside the same bytes written to and read from a plain file, and the
  peak of Python memory while uploading and downloading the large one (tracemalloc). The
  target is streaming: the peak for the large file within 1.5 times the peak for the small
  one (a whole file in memory would be eight times as large).
- logs: lines appended in batches of 500 (AppendRunLogs: numbered, limited, the totals row
  locked per batch), beside the same rows inserted in one executemany per batch."""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime

import sqlalchemy as sa

from adapters.clocks import SystemClock
from adapters.identifiers import UuidGenerator
from adapters.persistence import tables as t
from adapters.persistence.artifact_chunks import DatabaseArtifactStorage
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.use_cases.artifacts import ArtifactUpload, OpenArtifact, StoreArtifact
from application.use_cases.catalog import (
    CreateEnvironment,
    CreateTestCase,
    CriterionInput,
    EnvironmentInput,
    TestCaseInput,
)
from application.use_cases.devices import RegisterDevice, RegisterDeviceRequest
from application.use_cases.run_logs import AppendRunLogs
from application.use_cases.test_runs import StartTestRun, StartTestRunRequest
from bench.stack import Databases, Figure, Results
from domain.run_logs import LogLevel, LogLimits, LogLine

CHUNK = 64 * 1024
BATCH = 500


def _chunks(mib: int) -> Iterator[bytes]:
    block = os.urandom(CHUNK)
    for _ in range(mib * 1024 * 1024 // CHUNK):
        yield block


def _run(uow, clock, ids) -> str:
    device = RegisterDevice(uow, clock, ids)(RegisterDeviceRequest(name=f"bench-{ids.new_id()}"))
    case = CreateTestCase(uow, clock, ids)(
        TestCaseInput(name=f"c-{ids.new_id()}", criteria=[CriterionInput("v", "<=", 1.0)])
    )
    environment = CreateEnvironment(uow, clock, ids)(EnvironmentInput(name=f"e-{ids.new_id()}"))
    start = StartTestRun(uow, clock, ids, 600, 3600)
    return start(StartTestRunRequest([case.id], environment.id, device_ids=[device.id])).id


def _timed_and_traced(action) -> tuple[float, float]:
    """(seconds of one pass, peak MiB of a second, traced pass)."""
    began = time.monotonic()
    action()
    took = time.monotonic() - began
    tracemalloc.start()
    try:
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return took, peak / 2**20


def _file_ceiling(mib: int) -> tuple[float, float]:
    """Seconds to write, then read, the same bytes as one plain file."""
    with tempfile.NamedTemporaryFile() as out:
        began = time.monotonic()
        for chunk in _chunks(mib):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
        wrote = time.monotonic() - began
        out.seek(0)
        began = time.monotonic()
        while out.read(256 * 1024):
            pass
        return wrote, time.monotonic() - began


def run(results: Results, databases: Databases, quick: bool = False) -> None:
    url = databases.create("artifacts")
    upgrade_schema(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    uow = lambda read_only=False: SqlAlchemyUnitOfWork(sessions, read_only)  # noqa: E731
    clock, ids = SystemClock(), UuidGenerator()
    storage = DatabaseArtifactStorage(engine)
    store = StoreArtifact(uow, storage, clock, ids, 2**40, 2**40)
    open_artifact = OpenArtifact(uow, storage)
    try:
        sizes = (2, 16) if quick else (8, 64)
        peaks = {}
        for mib in sizes:
            run_id = _run(uow, clock, ids)
            stored: list[str] = []

            def upload(mib=mib, run_id=run_id, stored=stored) -> None:
                name = f"file-{len(stored)}.bin"
                stored.append(store(run_id, ArtifactUpload(name), _chunks(mib)).artifact.id)

            def download(run_id=run_id, stored=stored) -> None:
                _, chunks = open_artifact(run_id, stored[0])
                for _ in chunks:
                    pass

            up_s, up_peak = _timed_and_traced(upload)
            down_s, down_peak = _timed_and_traced(download)
            file_up_s, file_down_s = _file_ceiling(mib)
            peaks[mib] = max(up_peak, down_peak)
            results.add(
                Figure(
                    "artifacts",
                    f"upload of {mib} MiB into PostgreSQL",
                    mib / up_s,
                    "MiB/s",
                    ceiling=mib / file_up_s,
                    ceiling_name="the same bytes to a plain file",
                    notes=f"peak {up_peak:.1f} MiB",
                )
            )
            results.add(
                Figure(
                    "artifacts",
                    f"download of {mib} MiB from PostgreSQL",
                    mib / down_s,
                    "MiB/s",
                    ceiling=mib / file_down_s,
                    ceiling_name="the same bytes from a plain file",
                    notes=f"peak {down_peak:.1f} MiB",
                )
            )
        small, big = sizes
        results.add(
            Figure(
                "artifacts",
                f"peak memory up- and downloading {big} MiB",
                peaks[big],
                "MiB",
                ceiling=peaks[small],
                ceiling_name=f"the same for {small} MiB",
                target="≤ 1.5 times (ratio ≤ 150 %)",
                met=peaks[big] <= 1.5 * peaks[small],
            )
        )
        _logs(results, engine, uow, clock, ids, 20_000 if quick else 100_000)
    finally:
        engine.dispose()


def _logs(results: Results, engine, uow, clock, ids, count: int) -> None:
    append = AppendRunLogs(uow, clock, LogLimits(count + 1, 2**40))
    run_id = _run(uow, clock, ids)
    now = datetime.now(UTC)
    batch = [LogLine(now, LogLevel.INFO, f"line {n} " + "x" * 80) for n in range(BATCH)]
    began = time.monotonic()
    for _ in range(count // BATCH):
        append(run_id, batch)
    took = time.monotonic() - began
    ceiling_run = _run(uow, clock, ids)
    rows = [
        {"run_id": ceiling_run, "at": now, "level": "info", "message": line.message}
        for line in batch
    ]
    began = time.monotonic()
    for n in range(count // BATCH):
        with engine.begin() as connection:
            numbered = [{**row, "seq": n * BATCH + i + 1} for i, row in enumerate(rows)]
            connection.execute(sa.insert(t.run_log_lines), numbered)
    ceiling_took = time.monotonic() - began
    results.add(
        Figure(
            "logs",
            f"{count:,} log lines appended in batches of {BATCH}",
            count / took,
            "lines/s",
            ceiling=count / ceiling_took,
            ceiling_name="the same rows inserted per batch",
        )
    )
