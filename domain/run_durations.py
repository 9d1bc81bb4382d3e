"""How long a run keeps its devices, for the queue's estimated starts.

A test case's expected duration is what past runs measured when there is enough of it, and
what the case declares otherwise: the declared `duration_s` is a guess written once, the
measurements are what the lab actually does (a case declared at 60 s that takes ten minutes
on real meters should be estimated at ten minutes). Enough means `MIN_MEASURED` of the last
`MEASURED_RUNS` completed runs containing the case; the median, not the mean, so that one run
that hung until its timeout does not move the figure. With fewer measurements the declaration
wins; a case that declares 0 s and was never measured has no expected duration, and neither
has a run containing it.

A booked run gives its devices back when its remaining cases are done: the runner executes a
run's cases one after the other, each on all of the run's devices at once, so the remaining
time counts from the end of the last case fully reported (or the run's start) and adds the
cases still to come. A run already past that moment ends "soon" (`OVERRUN_MARGIN_S` from now),
and none later than its deadline, when the reaper fails it."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from domain.test_cases import TestCaseSnapshot
from domain.test_runs import RunStatus, TestRun

MEASURED_RUNS = 20
MIN_MEASURED = 3
OVERRUN_MARGIN_S = 60.0
MAX_MEASURED_S = 30 * 24 * 3600.0

Measured = Mapping[str, Sequence[float]]  # test case id -> measured seconds, newest first


def case_duration_s(case: TestCaseSnapshot, measured: Sequence[float] = ()) -> float | None:
    # whatever times a runner reported: no case takes weeks, and a date far ahead must not
    # overflow the estimates
    recent = [min(max(0.0, m), MAX_MEASURED_S) for m in list(measured)[:MEASURED_RUNS]]
    if len(recent) >= MIN_MEASURED:
        return float(statistics.median(recent))
    if case.duration_s > 0:
        return float(case.duration_s)
    if recent:
        return float(statistics.median(recent))
    return None


def cases_duration_s(cases: Sequence[TestCaseSnapshot], measured: Measured) -> float | None:
    total = 0.0
    for case in cases:
        duration = case_duration_s(case, measured.get(case.id, ()))
        if duration is None:
            return None
        total += duration
    return total


def expected_duration_s(run: TestRun, measured: Measured) -> float | None:
    """How long the run will keep its devices once it has them."""
    return cases_duration_s(run.test_cases, measured)


def expected_free_at(run: TestRun, now: datetime, measured: Measured) -> datetime:
    """When a booked run (queued or running) gives its devices back. When a remaining case
    has no expected duration, its deadline: the latest it can keep them."""
    if run.status is RunStatus.QUEUED or run.started_at is None:
        begins, remaining = now, list(run.test_cases)  # waits for a runner to pick it up
    else:
        begins, remaining = run.started_at, []
        for case in run.test_cases:
            stamps = [
                r.finished_at
                for d in run.device_ids
                if (r := run.results.get((case.id, d))) is not None and r.finished_at
            ]
            if remaining or len(stamps) < len(run.device_ids):
                remaining.append(case)  # not fully reported: still to run (or running)
            else:  # a runner's clock may be ahead: a case did not end in the future
                begins = max(begins, min(now, max(stamps)))
    duration = cases_duration_s(remaining, measured)
    if duration is None or duration >= (run.deadline - begins).total_seconds():
        ends = run.deadline
    else:
        ends = begins + timedelta(seconds=duration)
    if ends <= now:
        return now + timedelta(seconds=OVERRUN_MARGIN_S)
    return ends
