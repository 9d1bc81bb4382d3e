"""The read path, the start path, end to end, and the API workers' memory: devicelab's processes
as deployed (gunicorn through `devicelab serve`, the worker, reference runners) on PostgreSQL
and RabbitMQ, loaded with wrk from this machine."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bench import bulk
from bench.stack import Databases, Figure, Results, devicelab, pgbench_tps, worker_rss_mb, wrk
from entrypoints.settings import Settings
from tests.support.deployment import free_port

ROOT = Path(__file__).resolve().parent.parent
START_DEVICES = 12_000  # more than a round of starts takes, so no device is asked for twice
START_SCRIPT = Path(__file__).resolve().parent / "start_runs.lua"


def _sql(url: str, query: str, **params) -> list:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(query), params)
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


# -- the read path -----------------------------------------------------------------------------


@contextmanager
def bare_flask(workers: int, threads: int = 16) -> Iterator[str]:
    """The ceiling's server, up: bench/bare_app.py under the gunicorn settings `devicelab
    serve` uses (gthread workers and threads, access log on); yields its page's URL."""
    port = free_port()
    gunicorn = [
        str(Path(sys.executable).parent / "gunicorn"),
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        "--worker-class=gthread",
        f"--threads={threads}",
        "--graceful-timeout=10",
        "--access-logfile=-",
        "bench.bare_app:create_app()",
    ]
    with tempfile.TemporaryFile(prefix="bare-access-") as log:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(gunicorn, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}/api/devices"
            _wait_until_up(url)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def _bare_flask(seconds: int, workers: int, threads: int):
    """The ceiling, measured once (after a warm-up)."""
    with bare_flask(workers, threads) as url:
        wrk(url, 3)  # warm-up
        return wrk(url, seconds)


def _wait_until_up(url: str) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def read_path(results: Results, lab, seconds: int) -> None:
    """The device list as a client asks for it the first time (200 with the page, from the
    worker's kept answer after the first), and again with the ETag of its last answer (304
    while nothing changes), beside the ceiling."""
    import urllib.request

    url = f"{lab.base}/api/devices?limit=50"
    auth = {"Authorization": f"Bearer {lab.token}"}
    wrk(url, 3, headers=auth)  # warm-up: connections, caches
    ours = wrk(url, seconds, headers=auth)
    assert ours.non_2xx == 0 and not ours.errors, ours
    with urllib.request.urlopen(urllib.request.Request(url, headers=auth)) as answer:
        etag = answer.headers["ETag"]
    again = wrk(url, seconds, headers={**auth, "If-None-Match": etag})
    assert not again.errors, again
    bare = _bare_flask(seconds, int(lab.env["DEVICELAB_WORKERS"]), 16)
    results.add(
        Figure(
            "read",
            "GET /api/devices (page of 50, authenticated), 16 connections",
            ours.requests_per_s,
            "req/s",
            ceiling=bare.requests_per_s,
            ceiling_name="bare Flask JSON, same gunicorn",
            target="≥ 25 %",
            met=ours.requests_per_s >= 0.25 * bare.requests_per_s,
        )
    )
    results.add(
        Figure(
            "read",
            "GET /api/devices p50 latency",
            ours.p50_ms,
            "ms",
            ceiling=bare.p50_ms,
            ceiling_name="bare Flask p50",
        )
    )
    results.add(
        Figure(
            "read",
            "GET /api/devices p99 latency",
            ours.p99_ms,
            "ms",
            ceiling=bare.p99_ms,
            ceiling_name="bare Flask p99",
            target="< 50 ms",
            met=ours.p99_ms < 50,
        )
    )
    results.add(
        Figure(
            "read",
            "GET /api/devices again with If-None-Match (304), 16 connections",
            again.requests_per_s,
            "req/s",
            ceiling=bare.requests_per_s,
            ceiling_name="bare Flask JSON, same gunicorn",
            notes=f"p99 {again.p99_ms:.1f} ms",
        )
    )


# -- the start path ----------------------------------------------------------------------------


def _release_everything(url: str) -> None:
    """Between rounds (not measured): end the rounds' runs and free their devices."""
    _sql(
        url,
        "UPDATE test_runs SET status = 'aborted', finished_at = now(), version = version + 1 "
        "WHERE status IN ('queued', 'running')",
    )
    _sql(
        url,
        "UPDATE devices SET status = 'available', held_by = NULL, version = version + 1 "
        "WHERE held_by IS NOT NULL",
    )


def start_path(results: Results, lab, databases: Databases, seconds: int, rounds: int) -> None:
    devices = START_DEVICES
    ids = Path(tempfile.mkstemp(prefix="devices-", suffix=".txt")[1])
    ids.write_text("\n".join(bulk.device_id(n) for n in range(200, devices)) + "\n")
    os.environ.update(
        BENCH_DEVICES_FILE=str(ids),
        BENCH_TOKEN=lab.token,
        BENCH_CASE=bulk.case_id(0),
        BENCH_ENVIRONMENT=bulk.environment_id(0),
        BENCH_STRIDE="2",
    )
    rates, p99s = [], []
    try:
        for number in range(rounds):
            _release_everything(lab.database_url)
            os.environ["BENCH_OFFSET"] = str(number * 997)
            report = wrk(f"{lab.base}/api/test-runs", seconds, script=START_SCRIPT)
            assert not report.errors, report
            rates.append(report.ok_per_s)
            p99s.append(report.p99_ms)
            print(
                f"[start] round {number + 1}: {report.ok_per_s:.1f} runs started/s, "
                f"{report.non_2xx} refused, p50 {report.p50_ms:.1f} ms, p99 {report.p99_ms:.1f} ms",
                flush=True,
            )
    finally:
        ids.unlink(missing_ok=True)
    _release_everything(lab.database_url)
    tps = pgbench_tps(databases, clients=16, seconds=seconds)
    rate = sorted(rates)[len(rates) // 2]
    results.add(
        Figure(
            "start",
            "POST /api/test-runs, 16 connections (median of rounds)",
            rate,
            "runs/s",
            ceiling=tps,
            ceiling_name="pgbench TPC-B-like, 16 clients, same server",
            target="≥ 15 %",
            met=rate >= 0.15 * tps,
            notes=f"p99 {max(p99s):.1f} ms",
        )
    )


# -- end to end --------------------------------------------------------------------------------


def end_to_end(results: Results, databases: Databases, seconds: int, runners: int) -> None:
    """Runs started with wrk for `seconds`, each on a device of its own; the worker relays the
    jobs to RabbitMQ, `runners` reference runners execute them (zero duration) and report;
    measured until the last device is free again."""
    devices = 20_000
    with devicelab(databases, runners=runners) as lab:
        bulk.load_catalog(lab.database_url, devices)
        ids = Path(tempfile.mkstemp(prefix="devices-", suffix=".txt")[1])
        ids.write_text("\n".join(bulk.device_id(n) for n in range(devices)) + "\n")
        os.environ.update(
            BENCH_DEVICES_FILE=str(ids),
            BENCH_TOKEN=lab.token,
            BENCH_CASE=bulk.case_id(0),
            BENCH_ENVIRONMENT=bulk.environment_id(0),
            BENCH_STRIDE="2",
            BENCH_OFFSET="0",
        )
        try:
            report = wrk(f"{lab.base}/api/test-runs", seconds, script=START_SCRIPT)
        finally:
            ids.unlink(missing_ok=True)
        started = report.requests - report.non_2xx
        _wait_until_all_finished(lab.database_url)
        (window,) = _sql(
            lab.database_url,
            "SELECT extract(epoch FROM max(finished_at) - min(created_at)), count(*), "
            "count(*) FILTER (WHERE status = 'completed') FROM test_runs",
        )
        span_s, runs, completed = float(window[0]), window[1], window[2]
        lag = _sql(
            lab.database_url,
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM sent_at - created_at) * 1000), count(*), "
            "count(*) FILTER (WHERE sent_at IS NULL) FROM outbox WHERE kind = 'test_run.job'",
        )[0]
        busy = _sql(lab.database_url, "SELECT count(*) FROM devices WHERE status <> 'available'")
        rss = worker_rss_mb(lab.processes["api"].pid)
        # then at half the sustained rate, which the lab keeps up with: lag without a queue
        paced_rate = max(1.0, 0.5 * runs / float(window[0]))
        (since,) = _sql(lab.database_url, "SELECT now()")[0]
        paced = _paced_starts(
            lab, paced_rate, seconds, [bulk.device_id(n) for n in range(devices - 1, 0, -1)]
        )
        _wait_until_all_finished(lab.database_url)
        paced_lag = _sql(
            lab.database_url,
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM o.sent_at - o.created_at) * 1000), "
            "percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM r.finished_at - r.created_at) * 1000), count(*) "
            "FROM outbox o JOIN test_runs r ON r.id = o.run_id "
            "WHERE o.kind = 'test_run.job' AND o.created_at >= :since",
            since=since,
        )[0]
    print(
        f"[e2e] {started} started by wrk in {report.seconds:.1f} s ({report.ok_per_s:.1f}/s); "
        f"{runs} runs, {completed} completed, {busy[0][0]} devices still busy; "
        f"{lag[1]} jobs, {lag[2]} unsent",
        flush=True,
    )
    rate = runs / span_s
    results.add(
        Figure(
            "e2e",
            f"runs started → RabbitMQ → {runners} runners → results → devices free",
            rate,
            "runs/s",
            ceiling=report.ok_per_s,
            ceiling_name="the start rate wrk reached meanwhile",
            target="≥ 200 runs/s",
            met=rate >= 200 and completed == runs and busy[0][0] == 0,
            notes=f"{runs} runs, {completed} completed, {busy[0][0]} devices left busy",
        )
    )
    p50, p99 = lag[0]
    relay = Settings.from_env(lab.env).relay_interval_s * 1000
    print(f"[e2e] paced phase: {paced} runs started at {paced_rate:.1f}/s", flush=True)
    (lag_p50, lag_p99), (run_p50, run_p99), _ = paced_lag
    results.add(
        Figure(
            "e2e",
            f"outbox relay lag p99 at a steady {paced_rate:.0f} runs/s (half the sustained rate)",
            lag_p99,
            "ms",
            ceiling=relay,
            ceiling_name="the relay's polling interval",
            target="< 100 ms",
            met=lag_p99 < 100,
            notes=f"p50 {lag_p50:.0f} ms; {paced} runs",
        )
    )
    results.add(
        Figure(
            "e2e",
            f"run started → devices free, p50 at a steady {paced_rate:.0f} runs/s",
            run_p50,
            "ms",
            notes=f"p99 {run_p99:.0f} ms",
        )
    )
    results.add(
        Figure(
            "e2e",
            "outbox relay lag p50 while saturated (created_at → sent_at)",
            p50,
            "ms",
            ceiling=relay,
            ceiling_name="the relay's polling interval",
        )
    )
    results.add(
        Figure(
            "e2e",
            "outbox relay lag p99 while saturated (created_at → sent_at)",
            p99,
            "ms",
            ceiling=relay,
            ceiling_name="the relay's polling interval",
            target="< 100 ms",
            met=p99 < 100,
        )
    )
    results.add(
        Figure(
            "memory",
            "RSS of an API worker after the end-to-end load (largest)",
            max(rss),
            "MB",
            target="< 150 MB",
            met=max(rss) < 150,
            notes=", ".join(f"{r:.0f}" for r in rss),
        )
    )


def _paced_starts(lab, rate: float, seconds: int, device_ids: list[str]) -> int:
    """Start runs at a steady `rate` per second (open loop: the schedule does not wait for
    answers), each on a device of its own, from four client threads; returns how many got 201."""
    import json
    import threading
    import urllib.request

    count = int(rate * seconds)
    began = time.monotonic() + 0.5
    created = []
    body = {"test_case_ids": [bulk.case_id(0)], "environment_id": bulk.environment_id(0)}

    def client(first: int) -> None:
        for n in range(first, count, 4):
            time.sleep(max(0.0, began + n / rate - time.monotonic()))
            request = urllib.request.Request(
                f"{lab.base}/api/test-runs",
                data=json.dumps({**body, "device_ids": [device_ids[n]]}).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {lab.token}",
                },
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    created.append(answer.status)
            except OSError:
                pass

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(1 for status in created if status == 201)


def _wait_until_all_finished(url: str, within_s: float = 600) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if (
            _sql(url, "SELECT count(*) FROM test_runs WHERE status IN ('queued', 'running')")[0][0]
            == 0
        ):
            return
        time.sleep(1)


def uncached_read(results: Results, databases: Databases, seconds: int, workers: int) -> None:
    """The same device list with the kept answers turned off: every request reads and encodes
    its page, as the first request after each change does."""
    off = {"DEVICELAB_LIST_CACHE_ENTRIES": "0"}
    with devicelab(databases, runners=0, workers=workers, **off) as lab:
        bulk.load_catalog(lab.database_url, START_DEVICES)
        url = f"{lab.base}/api/devices?limit=50"
        auth = {"Authorization": f"Bearer {lab.token}"}
        wrk(url, 3, headers=auth)
        report = wrk(url, seconds, headers=auth)
        assert report.non_2xx == 0 and not report.errors, report
    results.add(
        Figure(
            "read",
            "GET /api/devices with no kept answers (DEVICELAB_LIST_CACHE_ENTRIES=0), 16 connections",
            report.requests_per_s,
            "req/s",
            notes=f"p50 {report.p50_ms:.1f} ms, p99 {report.p99_ms:.1f} ms",
        )
    )


def read_start_memory(
    results: Results, databases: Databases, seconds: int, rounds: int, workers: int = 2
) -> None:
    with devicelab(databases, runners=0, workers=workers) as lab:
        bulk.load_catalog(lab.database_url, START_DEVICES)
        read_path(results, lab, seconds)
        start_path(results, lab, databases, seconds, rounds)
        rss = worker_rss_mb(lab.processes["api"].pid)
    uncached_read(results, databases, seconds, workers)
    results.add(
        Figure(
            "memory",
            "RSS of an API worker after the read and start load (largest)",
            max(rss),
            "MB",
            target="< 150 MB",
            met=max(rss) < 150,
            notes=", ".join(f"{r:.0f}" for r in rss),
        )
    )
