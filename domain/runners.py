"""The runner registry: which Test Runners devicelab has heard from, what they said about
themselves, how their runs ended, and whether an admin drained them.

Runners are not registered by anyone: a runner appears when its first `started` report
arrives and is kept up to date by its reports. A runner only reports while it has a run, so
"silent" means "not heard from lately", which an idle runner is too; it is no verdict on
whether the process lives."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import InvalidValue, RunnerDrained
from domain.test_runs import RunStatus, TestRun

MAX_RUNNER_ID = 200
MAX_HOST = 200
MAX_VERSION = 100
MAX_EXECUTORS = 20
MAX_EXECUTOR_NAME = 50
MAX_DRAIN_REASON = 500


class RunnerState(enum.StrEnum):
    ONLINE = "online"  # reported within the silence threshold
    SILENT = "silent"  # nothing heard for longer (idle, stopped, or cut off)


@dataclass(frozen=True)
class RunnerInfo:
    """What a runner says about itself in a report; empty when an older runner says nothing."""

    host: str = ""
    version: str = ""
    executors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.host) > MAX_HOST:
            raise InvalidValue("host", f"at most {MAX_HOST} characters")
        if len(self.version) > MAX_VERSION:
            raise InvalidValue("version", f"at most {MAX_VERSION} characters")
        if len(self.executors) > MAX_EXECUTORS:
            raise InvalidValue("executors", f"at most {MAX_EXECUTORS} names")
        if any(not name or len(name) > MAX_EXECUTOR_NAME for name in self.executors):
            raise InvalidValue("executors", f"names of 1 to {MAX_EXECUTOR_NAME} characters")


def counts_as_failure(run: TestRun) -> bool:
    """A run the runner finished without results to judge: it reported `failed`, or fell
    silent until the reaper failed it (reason `timeout`). A cancelled run is no failure of
    the runner; neither is a completed run whose devices failed their criteria."""
    return run.status is RunStatus.FAILED


@dataclass
class Runner:
    id: str
    first_seen_at: datetime
    last_seen_at: datetime
    host: str = ""
    version: str = ""
    executors: tuple[str, ...] = ()
    runs_done: int = 0  # runs it had claimed that ended (completed, failed, expired, aborted)
    failures: int = 0  # of those, the ones counts_as_failure
    drained: bool = False
    drained_by: str = ""
    drained_at: datetime | None = None
    drain_reason: str = ""

    @classmethod
    def first_report(cls, runner_id: str, at: datetime, info: RunnerInfo) -> Runner:
        runner_id = runner_id.strip()
        if not runner_id or len(runner_id) > MAX_RUNNER_ID:
            raise InvalidValue("runner", f"a runner id of 1 to {MAX_RUNNER_ID} characters")
        runner = cls(id=runner_id, first_seen_at=at, last_seen_at=at)
        runner.heard(at, info)
        return runner

    def heard(self, at: datetime, info: RunnerInfo) -> None:
        """A report came. What the runner says about itself replaces what it said before;
        a report that says nothing (a heartbeat, an older runner) keeps it."""
        self.last_seen_at = max(self.last_seen_at, at)
        if info.host:
            self.host = info.host
        if info.version:
            self.version = info.version
        if info.executors:
            self.executors = tuple(info.executors)

    def state(self, now: datetime, silent_after_s: float) -> RunnerState:
        if now - self.last_seen_at > timedelta(seconds=silent_after_s):
            return RunnerState.SILENT
        return RunnerState.ONLINE

    def run_ended(self, run: TestRun) -> None:
        self.runs_done += 1
        if counts_as_failure(run):
            self.failures += 1

    def drain(self, by: str, at: datetime, reason: str = "") -> bool:
        """It takes no new run from now on; the one it has finishes. False: already drained."""
        reason = (reason or "").strip()
        if len(reason) > MAX_DRAIN_REASON:
            raise InvalidValue("reason", f"at most {MAX_DRAIN_REASON} characters")
        if self.drained:
            return False
        self.drained, self.drained_by, self.drained_at, self.drain_reason = True, by, at, reason
        return True

    def undrain(self) -> bool:
        if not self.drained:
            return False
        self.drained, self.drained_by, self.drained_at, self.drain_reason = False, "", None, ""
        return True

    def check_may_start(self, run: TestRun) -> None:
        """A drained runner takes no run it does not hold already; the run it holds (a
        repeated `started`, or a restart under its stable id) it may finish."""
        if self.drained and run.runner != self.id:
            raise RunnerDrained(run.id, self.id, self.drained_by or "an admin")
