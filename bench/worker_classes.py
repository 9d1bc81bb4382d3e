"""REST reads under gunicorn's gevent worker against its threaded one (issue 13): GET
/api/devices?limit=50 at 16 connections with no stream open, on two labs started side by side
(same code, same data, one with DEVICELAB_WORKER_CLASS=gevent, one with gthread), measured in
turn, a few rounds interleaved, so a machine whose load changes meanwhile costs both alike.
The load average is printed beside each round."""

from __future__ import annotations

from pathlib import Path
from statistics import median

from bench.stack import Databases, Figure, Results, devicelab, wrk

CLASSES = ("gevent", "gthread")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(results: Results, databases: Databases, seconds: int, rounds: int = 4) -> None:
    with (
        devicelab(databases, DEVICELAB_WORKER_CLASS="gevent") as gevent_lab,
        devicelab(databases, DEVICELAB_WORKER_CLASS="gthread") as gthread_lab,
    ):
        labs = {"gevent": gevent_lab, "gthread": gthread_lab}
        for lab in labs.values():
            lab.make_lab(devices=40, duration_s=1)
        reports: dict[str, list] = {name: [] for name in CLASSES}
        loads: list[str] = []
        for round_ in range(rounds):
            # alternate which goes first: neither always gets the quieter half of a round
            for name in CLASSES if round_ % 2 == 0 else reversed(CLASSES):
                lab = labs[name]
                url = f"{lab.base}/api/devices?limit=50"
                auth = {"Authorization": f"Bearer {lab.token}"}
                if round_ == 0:
                    wrk(url, 3, headers=auth)  # warm-up
                loads.append(f"{name} {_load()}")
                reports[name].append(wrk(url, seconds, headers=auth))
    rates = {name: [r.requests_per_s for r in reports[name]] for name in CLASSES}
    p99s = {name: [r.p99_ms for r in reports[name]] for name in CLASSES}
    results.add(
        Figure(
            "workers/postgresql",
            "GET /api/devices?limit=50 at 16 connections, no stream open, gevent worker "
            "(median of interleaved rounds)",
            median(rates["gevent"]),
            "req/s",
            ceiling=median(rates["gthread"]),
            ceiling_name="same, gthread worker",
            notes=(
                f"req/s per round gevent {[round(r) for r in rates['gevent']]}, gthread "
                f"{[round(r) for r in rates['gthread']]}; p99 ms gevent {p99s['gevent']}, "
                f"gthread {p99s['gthread']}; load average before each: {'; '.join(loads)}"
            ),
        )
    )
