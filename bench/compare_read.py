"""`python -m bench.compare_read <other checkout>`: the read path of two versions of devicelab
side by side, each on its own database, measured in alternation so that the machine's drift
hits both alike. The other checkout is e.g. `git worktree add /tmp/before <commit>`; its code
runs with this checkout's virtualenv."""

from __future__ import annotations

import argparse
import statistics
from contextlib import ExitStack
from pathlib import Path

from bench import bulk
from bench.service import START_DEVICES
from bench.stack import Databases, devicelab, wrk

HERE = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare_read", description=__doc__)
    parser.add_argument("other", type=Path, help="the other checkout (the 'before' side)")
    parser.add_argument("--rounds", type=int, default=4, help="wrk runs per side")
    parser.add_argument("--seconds", type=int, default=12, help="length of each wrk run")
    args = parser.parse_args()
    sides = {"before": args.other.resolve(), "after": HERE}
    databases = Databases()
    try:
        with ExitStack() as stack:
            labs = {}
            for side, tree in sides.items():
                lab = stack.enter_context(devicelab(databases, PYTHONPATH=str(tree)))
                bulk.load_catalog(lab.database_url, START_DEVICES)
                labs[side] = lab

            def load(side: str, seconds: int):
                lab = labs[side]
                auth = {"Authorization": f"Bearer {lab.token}"}
                return wrk(f"{lab.base}/api/devices?limit=50", seconds, headers=auth)

            for side in sides:
                load(side, 3)  # warm-up
            rates: dict[str, list[int]] = {side: [] for side in sides}
            for n in range(args.rounds):
                for side in ("before", "after") if n % 2 == 0 else ("after", "before"):
                    report = load(side, args.seconds)
                    rates[side].append(round(report.requests_per_s))
                    print(
                        f"{side:6} {report.requests_per_s:7.0f} req/s  p50 {report.p50_ms:6.1f} ms"
                        f"  p99 {report.p99_ms:6.1f} ms",
                        flush=True,
                    )
            for side, values in rates.items():
                print(f"{side:6} median {statistics.median(values):.0f} req/s, runs {values}")
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
