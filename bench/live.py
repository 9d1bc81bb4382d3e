"""Live event streams at lab scale (issue 13): 1,000 open streams on PostgreSQL and 200 on the
embedded SQLite default, on `devicelab serve` as deployed (two gevent workers) with the worker
and a reference runner beside it.

Printed for each backend:
- GET /api/devices?limit=50 at 16 connections with no stream open (the ceiling) and with the
  streams open while runs start and finish at a steady rate: req/s (target ≥ 50 % of the
  ceiling) and p99 (target at most twice the ceiling's); the p99's notes give the same reads
  with the runs starting and no stream open, the share of the runs alone;
- change delivery latency, p99 over every (change, stream): from the change log's time of the
  change (taken just before its transaction commits, so a little more than from the commit)
  to the moment the stream's socket had an event with that id or a later one of the same
  thing; every change must reach every stream (missing ones are counted);
- the API workers' resident memory per 100 open streams;
- where the CPU went while the streams were open (the API workers, the devicelab worker and
  runner, PostgreSQL's processes of every database, this client reading the streams) and the
  load average: on a 2-core machine the client and the server share the cores."""

from __future__ import annotations

import bisect
import os
import shutil
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from bench.stack import Databases, Figure, Results, devicelab, worker_rss_mb, wrk
from tests.support.deployment import Deployment
from tests.support.event_streams import StreamCrowd

RUN_RATE = 2.0  # runs started per second while the streams are open
DEVICES = 40


@contextmanager
def _sqlite_lab(streams: int):
    home = Path(tempfile.mkdtemp(prefix="devicelab-bench-live-"))
    deployment = Deployment(
        home,
        DEVICELAB_WORKERS="2",
        DEVICELAB_RUNNER_TIME_FACTOR="0",
        DEVICELAB_LOG_LEVEL="WARNING",
        DEVICELAB_MAX_STREAMS_PER_USER=str(streams + 50),
    )
    deployment.env.pop("DEVICELAB_RELAY_INTERVAL_S", None)
    deployment.database_url = f"sqlite:///{home / 'var' / 'devicelab.db'}"
    try:
        deployment.start(runners=1)
        yield deployment
    finally:
        deployment.stop()
        shutil.rmtree(home, ignore_errors=True)


class SteadyRuns:
    """Starts a run every 1/RUN_RATE s, each on the next of the lab's devices, until stopped."""

    def __init__(self, lab: Deployment, setup: dict) -> None:
        self.lab, self.setup, self.stop, self.started, self.refused = lab, setup, False, 0, []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        began, n = time.monotonic(), 0
        while not self.stop:
            time.sleep(max(0.0, began + n / RUN_RATE - time.monotonic()))
            device = self.setup["devices"][n % len(self.setup["devices"])]
            n += 1
            body = {
                "test_case_ids": [self.setup["case"]],
                "environment_id": self.setup["env"],
                "device_ids": [device],
            }
            try:
                status, answer = self.lab.request("POST", "/api/test-runs", body, timeout_s=30)
            except OSError as error:
                self.refused.append(repr(error))
                continue
            if status == 201:
                self.started += 1
            else:
                self.refused.append((status, answer))

    def finish(self) -> None:
        self.stop = True
        self.thread.join(timeout=60)


def _wait_until_quiet(database_url: str, quiet_s: float = 5.0, at_most_s: float = 60.0) -> None:
    """Until the change log has had no new change for `quiet_s` (the worker's passes and the
    last runs' ends go on after the starts stop): a change committed just before the streams
    close would otherwise count as missing with no time to arrive."""
    engine = sa.create_engine(database_url)
    try:
        last, since = None, time.monotonic()
        deadline = since + at_most_s
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                newest = connection.execute(sa.text("SELECT max(id) FROM change_log")).scalar()
            if newest != last:
                last, since = newest, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()


def _change_log(database_url: str, after: int) -> list[tuple[int, str, str, float]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, kind, entity_id, at FROM change_log WHERE id > :a ORDER BY id"),
                {"a": after},
            ).all()
    finally:
        engine.dispose()
    return [(r[0], r[1], r[2], _epoch(r[3])) for r in rows]


def _epoch(at) -> float:
    if isinstance(at, str):  # SQLite through a plain engine: the stored text
        from datetime import datetime

        at = datetime.fromisoformat(at)
    if at.tzinfo is None:
        from datetime import UTC

        at = at.replace(tzinfo=UTC)
    return at.timestamp()


def delivery_latencies(crowd: StreamCrowd, log: list) -> tuple[list[float], int]:
    """Latency of every (change, stream) and how many changes never reached a stream."""
    latencies, missing = [], 0
    for stream in crowd.streams:
        by_thing: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
        for event in stream.events:
            if event.id is not None:
                by_thing[event.thing].append((event.id, event.received_at))
        for received in by_thing.values():
            received.sort()
        for change_id, kind, entity_id, at in log:
            if change_id <= (stream.opened_at_change or 0):
                continue
            received = by_thing.get((kind, entity_id), [])
            index = bisect.bisect_left(received, (change_id, 0.0))
            if index == len(received):
                missing += 1
            else:
                # an earlier event of the thing may not carry this change: the first that does
                latencies.append(max(0.0, min(r[1] for r in received[index:]) - at))
    return latencies, missing


def _cpu_s(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds each process has used so far (gone ones are left out)."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return used


def _cpu_used(before: dict[int, float], pids: list[int]) -> float:
    """CPU seconds used since `before` by the processes alive at both readings: one that ended
    meanwhile (another user's PostgreSQL backend on a shared machine) counted as a negative
    share before."""
    after = _cpu_s(pids)
    return sum(after[pid] - before[pid] for pid in after.keys() & before.keys())


def _pids_where(test) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if test(stat):
                pids.append(int(entry.name))
    return pids


def _cpu_shares(lab: Deployment) -> dict[str, list[int]]:
    """The processes whose CPU the bench reports, by role."""
    api = lab.processes["api"].pid
    workers = _pids_where(lambda stat: stat.rpartition(")")[2].split()[1] == str(api))
    others = [lab.processes[n].pid for n in lab.processes if n != "api"]
    postgres = _pids_where(lambda stat: "(postgres)" in stat)
    return {
        "API workers": workers,
        "worker+runner": others,
        "postgres (all)": postgres,
        "bench client": [os.getpid()],
    }


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def _one_backend(results: Results, lab: Deployment, backend: str, streams: int, seconds: int):
    name = f"live/{backend}"
    setup = lab.make_lab(devices=DEVICES, duration_s=1)
    url = f"{lab.base}/api/devices?limit=50"
    auth = {"Authorization": f"Bearer {lab.token}"}
    wrk(url, 3, headers=auth)  # warm-up
    quiet = wrk(url, seconds, headers=auth)
    # what the runs alone cost the REST reads (no stream open): the part of the figures
    # below that the streams do not account for
    runs_alone = SteadyRuns(lab, setup)
    with_runs = wrk(url, seconds, headers=auth)
    runs_alone.finish()
    _wait_until_quiet(lab.database_url)
    api_pid = lab.processes["api"].pid
    rss_before = sum(worker_rss_mb(api_pid))
    crowd = StreamCrowd("127.0.0.1", lab.port, lab.token, max_seconds=3600)
    try:
        for _ in range(0, streams, 100):
            crowd.open(min(100, streams - len(crowd.streams)), retries=10)
        time.sleep(2)
        rss_after = sum(worker_rss_mb(api_pid))
        shares = _cpu_shares(lab)
        runs = SteadyRuns(lab, setup)
        # the fan-out's own cost: the runs' changes reach every stream, no REST load
        fanout_before, fanout_began = _cpu_s(shares["API workers"]), time.monotonic()
        time.sleep(seconds / 2)
        fanout_cores = _cpu_used(fanout_before, shares["API workers"]) / (
            time.monotonic() - fanout_began
        )
        cpu_before = {role: _cpu_s(pids) for role, pids in shares.items()}
        began, load_before = time.monotonic(), _load()
        busy = wrk(url, seconds, headers=auth)
        runs.finish()
        took = time.monotonic() - began
        cores = {role: _cpu_used(cpu_before[role], pids) / took for role, pids in shares.items()}
        cpu_note = ", ".join(f"{role} {used:.2f}" for role, used in cores.items())
        _wait_until_quiet(lab.database_url)  # the last runs end, their changes reach the streams
        still_open = crowd.open_streams
    finally:
        crowd.close()
    log = _change_log(lab.database_url, min(s.opened_at_change or 0 for s in crowd.streams))
    latencies, missing = delivery_latencies(crowd, log)
    # why the server closed streams before the end (this client does not reconnect)
    closings = Counter(
        comment
        for s in crowd.streams
        for comment in s.comments
        if comment.startswith("stream closed")
    )
    closed_note = ", ".join(f"{n} {why}" for why, n in closings.most_common()) or "none"
    ratio_note = f"{streams} streams, {runs.started} runs started at {RUN_RATE:g}/s"
    results.add(
        Figure(
            name,
            "GET /api/devices?limit=50 at 16 connections with the streams open",
            busy.requests_per_s,
            "req/s",
            ceiling=quiet.requests_per_s,
            ceiling_name="same, no stream open",
            target="≥ 50 %",
            met=busy.requests_per_s >= 0.5 * quiet.requests_per_s and busy.non_2xx == 0,
            notes=f"{ratio_note}; non-2xx {busy.non_2xx}; {busy.errors or 'no socket errors'}",
        )
    )
    results.add(
        Figure(
            name,
            "API workers' CPU with the streams open and runs starting, no REST load",
            fanout_cores,
            "cores",
            notes=(
                f"{streams} streams, runs started at {RUN_RATE:g}/s; DEVICELAB_STREAM_BATCH_S "
                f"{lab.env.get('DEVICELAB_STREAM_BATCH_S', 'default')}"
            ),
        )
    )
    results.add(
        Figure(
            name,
            "GET /api/devices p99 with the streams open",
            busy.p99_ms,
            "ms",
            ceiling=quiet.p99_ms,
            ceiling_name="p99 with no stream open",
            target="≤ 2×",
            met=busy.p99_ms <= 2 * quiet.p99_ms,
            notes=(
                f"with runs starting at {RUN_RATE:g}/s and no stream open: p99 "
                f"{with_runs.p99_ms:.1f} ms at {with_runs.requests_per_s:.0f} req/s "
                f"(the runs' share of the figure)"
            ),
        )
    )
    results.add(
        Figure(
            name,
            "change delivery latency p99, commit to every stream",
            _percentile(latencies, 0.99) * 1000,
            "ms",
            target="≤ 1000 ms, none missing",
            met=_percentile(latencies, 0.99) <= 1.0 and missing == 0,
            notes=(
                f"p50 {_percentile(latencies, 0.5) * 1000:.0f} ms over {len(latencies):,} "
                f"deliveries of {len(log)} changes; missing {missing}; "
                f"streams still open at the end {still_open}/{streams} (closed: {closed_note}); "
                f"starts refused {len(runs.refused)}; stream opens refused and retried: "
                f"{dict(Counter(crowd.refusals)) or 'none'}"
            ),
        )
    )
    results.add(
        Figure(
            name,
            "API workers' memory per 100 open streams",
            (rss_after - rss_before) / streams * 100,
            "MB",
            notes=f"RSS of both workers {rss_before:.0f} MB → {rss_after:.0f} MB",
        )
    )
    results.add(
        Figure(
            name,
            "CPU cores in use while the streams were open and runs started (of 2)",
            sum(cores.values()),
            "cores",
            notes=f"{cpu_note}; load average before {load_before}, after {_load()}",
        )
    )


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(
    results: Results,
    databases: Databases,
    seconds: int,
    quick: bool = False,
    only: str | None = None,
) -> None:
    """Both backends, or `only` one of them ("postgresql" or "sqlite")."""
    postgres_streams, sqlite_streams = (100, 50) if quick else (1000, 200)
    if only in (None, "postgresql"):
        _postgresql(results, databases, seconds, postgres_streams)
    if only in (None, "sqlite"):
        with _sqlite_lab(sqlite_streams) as lab:
            _one_backend(results, lab, "sqlite", sqlite_streams, seconds)


def _postgresql(
    results: Results, databases: Databases, seconds: int, postgres_streams: int
) -> None:
    with devicelab(
        databases,
        runners=1,
        workers=2,
        DEVICELAB_MAX_STREAMS_PER_USER=str(postgres_streams + 50),
    ) as lab:
        _one_backend(results, lab, "postgresql", postgres_streams, seconds)
