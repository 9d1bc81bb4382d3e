"""`python -m bench [read start e2e live workers scale compare scheduler export artifacts] [--quick] [--only sqlite]`: run the benchmarks, print each figure
beside its ceiling, and write the table (and any EXPLAIN plans) to bench/results/."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench import artifacts, comparison, export, live, scale, scheduler, service, worker_classes
from bench.stack import Databases, Results, machine

RESULTS = Path(__file__).resolve().parent / "results"


def markdown(results: Results) -> str:
    lines = [
        "| benchmark | figure | devicelab | ceiling | ratio | target | |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for f in results.figures:
        ceiling = f"{f.ceiling:,.1f} — {f.ceiling_name}" if f.ceiling is not None else "—"
        ratio = f"{f.ratio:.0%}" if f.ratio is not None else "—"
        verdict = {True: "met", False: "**missed**", None: ""}[f.met]
        note = f" ({f.notes})" if f.notes else ""
        lines.append(
            f"| {f.benchmark} | {f.metric}{note} | {f.value:,.2f} {f.unit} | {ceiling} | "
            f"{ratio} | {f.target or '—'} | {verdict} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="{read,start,e2e,live,workers,scale,compare,scheduler,export,artifacts}",
        help="which to run (default: all); read and start also measure the API's memory",
    )
    parser.add_argument("--quick", action="store_true", help="short runs, small data: a smoke test")
    parser.add_argument("--seconds", type=int, help="length of each wrk run (default 20, quick 3)")
    parser.add_argument("--runs", type=int, help="runs in the large scale lab (default 1,000,000)")
    parser.add_argument("--runners", type=int, default=4, help="reference runners for e2e")
    parser.add_argument(
        "--only",
        choices=("postgresql", "sqlite"),
        help="live: measure this backend alone (default: both, PostgreSQL first)",
    )
    args = parser.parse_args()
    known = {
        "read",
        "start",
        "e2e",
        "live",
        "workers",
        "scale",
        "compare",
        "scheduler",
        "export",
        "artifacts",
    }
    chosen = set(args.benchmarks or known)
    if chosen - known:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(chosen - known))}")
    seconds = args.seconds or (3 if args.quick else 20)
    runs = args.runs or (20_000 if args.quick else 1_000_000)
    devices = 1_000 if args.quick else 10_000

    print(f"devicelab benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}", flush=True)
    results, databases = Results(), Databases()
    began = time.monotonic()
    try:
        if chosen & {"read", "start"}:
            service.read_start_memory(results, databases, seconds, rounds=1 if args.quick else 3)
        if "e2e" in chosen:
            service.end_to_end(results, databases, seconds, args.runners)
        if "live" in chosen:
            live.run(results, databases, seconds, quick=args.quick, only=args.only)
        if "workers" in chosen:
            worker_classes.run(results, databases, seconds, rounds=2 if args.quick else 4)
        if "scale" in chosen:
            scale.run(results, databases, runs=runs, devices=devices, small=10_000)
        if "compare" in chosen:
            comparison.run(results, databases, runs=runs, devices=devices)
        if "scheduler" in chosen:
            scheduler.run(results, quick=args.quick)
        if "export" in chosen:
            export.run(results, databases, quick=args.quick)
        if "artifacts" in chosen:
            artifacts.run(results, databases, quick=args.quick)
    finally:
        databases.drop_all()
    took = time.monotonic() - began
    table = markdown(results)
    print(f"\n{table}\n\nall benchmarks took {took / 60:.1f} min; {machine()}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M")
    name = f"{stamp}{'-quick' if args.quick else ''}{f'-{args.only}' if args.only else ''}"
    (RESULTS / f"{name}.md").write_text(
        f"# devicelab benchmarks {stamp}\n\n{machine()}; took {took / 60:.1f} min\n\n{table}\n\n"
        + "\n\n".join(results.explains)
        + "\n"
    )
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "seconds": took,
                "figures": [asdict(f) for f in results.figures],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
