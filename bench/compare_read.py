"""`python -m bench.compare_read <other checkout>`: the read path of two versions of devicelab
side by side, each on its own database, measured in alternation with the bare-Flask ceiling
(bench/bare_app.py, same gunicorn settings) so that the machine's drift hits all alike. Each
round also asks this checkout's list again with the `ETag` of its last answer
(`If-None-Match`, answered 304 while nothing changes). The other checkout is e.g.
`git worktree add /tmp/before <commit>`; its code runs with this checkout's virtualenv."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from bench import bulk
from bench.service import START_DEVICES, bare_flask
from bench.stack import Databases, devicelab, wrk

HERE = Path(__file__).resolve().parent.parent
PAGE = "/api/devices?limit=50"


def _etag(url: str, headers: dict[str, str]) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
        json.load(answer)
        return answer.headers["ETag"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare_read", description=__doc__)
    parser.add_argument("other", type=Path, help="the other checkout (the 'before' side)")
    parser.add_argument("--rounds", type=int, default=4, help="wrk runs per side")
    parser.add_argument("--seconds", type=int, default=12, help="length of each wrk run")
    args = parser.parse_args()
    trees = {"before": args.other.resolve(), "after": HERE}
    databases = Databases()
    try:
        with ExitStack() as stack:
            loads = {}
            for side, tree in trees.items():
                lab = stack.enter_context(devicelab(databases, PYTHONPATH=str(tree)))
                bulk.load_catalog(lab.database_url, START_DEVICES)
                auth = {"Authorization": f"Bearer {lab.token}"}
                loads[side] = (f"{lab.base}{PAGE}", auth)
            url, auth = loads["after"]
            loads["after 304"] = (url, {**auth, "If-None-Match": _etag(url, auth)})
            loads["bare Flask"] = (stack.enter_context(bare_flask(workers=2)), {})

            for url, headers in loads.values():
                wrk(url, 3, headers=headers)  # warm-up
            sides = list(loads)
            rates: dict[str, list[float]] = {side: [] for side in sides}
            p99s: dict[str, list[float]] = {side: [] for side in sides}
            for n in range(args.rounds):
                order = sides[n % len(sides) :] + sides[: n % len(sides)]
                for side in order:
                    url, headers = loads[side]
                    report = wrk(url, args.seconds, headers=headers)
                    assert not report.errors, report
                    # wrk counts 304s with the errors; elsewhere a refusal (a shared server
                    # out of connections: 503) is printed, not hidden
                    refused = report.non_2xx if side != "after 304" else 0
                    rates[side].append(report.requests_per_s)
                    p99s[side].append(report.p99_ms)
                    print(
                        f"round {n + 1} {side:10} {report.requests_per_s:7.0f} req/s  "
                        f"p50 {report.p50_ms:6.1f} ms  p99 {report.p99_ms:6.1f} ms  "
                        f"(load {os.getloadavg()[0]:.1f})"
                        + (f", {refused} answers not 2xx" if refused else ""),
                        flush=True,
                    )
                ceiling = rates["bare Flask"][-1]
                print(
                    f"round {n + 1}: "
                    + ", ".join(
                        f"{side} {rates[side][-1] / ceiling:.0%}"
                        for side in sides
                        if side != "bare Flask"
                    )
                    + " of bare Flask",
                    flush=True,
                )
            ceiling = statistics.median(rates["bare Flask"])
            for side in sides:
                median = statistics.median(rates[side])
                print(
                    f"{side:10} median {median:6.0f} req/s ({median / ceiling:4.0%} of bare Flask's "
                    f"median), p99 median {statistics.median(p99s[side]):.1f} ms, "
                    f"runs {[round(r) for r in rates[side]]}"
                )
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
