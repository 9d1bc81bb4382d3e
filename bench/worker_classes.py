"""REST reads under gunicorn's gevent worker against its threaded one (issue 13): GET
/api/devices?limit=50 at 16 connections with no stream open, on labs started side by side
(same code, same data): the gevent worker as deployed (DEVICELAB_ACTIVE_REQUESTS at its
default), the gevent worker running every request at once, and the gthread worker. They are
measured in turn, a few rounds interleaved (the order alternating), so a machine whose load
changes meanwhile costs each alike. The load average is printed before each measurement."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from statistics import median

from bench.stack import Databases, Figure, Results, devicelab, wrk

WORKERS = {
    "gevent": {"DEVICELAB_WORKER_CLASS": "gevent"},
    "gevent, no limit": {"DEVICELAB_WORKER_CLASS": "gevent", "DEVICELAB_ACTIVE_REQUESTS": "1000"},
    "gthread": {"DEVICELAB_WORKER_CLASS": "gthread"},
}


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(results: Results, databases: Databases, seconds: int, rounds: int = 4) -> None:
    names = list(WORKERS)
    reports: dict[str, list] = {name: [] for name in names}
    loads: list[str] = []
    with ExitStack() as labs_open:
        labs = {
            name: labs_open.enter_context(devicelab(databases, **env))
            for name, env in WORKERS.items()
        }
        for lab in labs.values():
            lab.make_lab(devices=40, duration_s=1)
        for round_ in range(rounds):
            # alternate the order: none always gets the quieter part of a round
            for name in names if round_ % 2 == 0 else reversed(names):
                lab = labs[name]
                url = f"{lab.base}/api/devices?limit=50"
                auth = {"Authorization": f"Bearer {lab.token}"}
                if round_ == 0:
                    wrk(url, 3, headers=auth)  # warm-up
                loads.append(f"{name} {_load()}")
                reports[name].append(wrk(url, seconds, headers=auth))
    rates = {name: [r.requests_per_s for r in reports[name]] for name in names}
    p99s = {name: [r.p99_ms for r in reports[name]] for name in names}
    for name in names[:2]:
        results.add(
            Figure(
                "workers/postgresql",
                f"GET /api/devices?limit=50 at 16 connections, no stream open, {name} "
                "(median of interleaved rounds)",
                median(rates[name]),
                "req/s",
                ceiling=median(rates["gthread"]),
                ceiling_name="same, gthread worker",
                notes=(
                    f"req/s per round {[round(r) for r in rates[name]]} against gthread "
                    f"{[round(r) for r in rates['gthread']]}; p99 ms median {median(p99s[name]):.0f} "
                    f"against {median(p99s['gthread']):.0f}"
                ),
            )
        )
    results.add(
        Figure(
            "workers/postgresql",
            "load average before each measurement",
            float(loads[0].rsplit(" ", 3)[1]),
            "",
            notes="; ".join(loads),
        )
    )
