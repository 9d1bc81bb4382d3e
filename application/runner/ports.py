"""The ports the Test Runner's use case needs: executors that measure, a client for the
callback API, and an optional writer of the runner's own metrics."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from application.runner.jobs import Callback
from domain.environments import EnvironmentSnapshot
from domain.test_cases import TestCaseSnapshot
from domain.test_runs import DeviceSnapshot, ResultReport


class RunLog(Protocol):
    """Where an executor writes the run's log lines (the command executor: its command's
    stdout and stderr, line by line). Never blocks on the network and never raises."""

    def write(
        self,
        level: str,
        message: str,
        device_id: str | None = None,
        test_case_id: str | None = None,
    ) -> None: ...


class ArtifactSink(Protocol):
    """Where an executor hands the files a run leaves (uploaded before this returns, as long
    as the file exists); a file the server refuses is noted in the run's log, never raised."""

    def upload(
        self,
        path: str,
        name: str,
        device_id: str | None = None,
        test_case_id: str | None = None,
    ) -> None: ...


class _Nowhere:
    """The log and artifact sink of an execution nobody reads (tests, tools)."""

    def write(self, level, message, device_id=None, test_case_id=None) -> None:
        return None

    def upload(self, path, name, device_id=None, test_case_id=None) -> None:
        return None


NOWHERE = _Nowhere()


@dataclass(frozen=True)
class ExecutionRequest:
    """One test case of a run, to execute on every device of the run. What to execute is
    `case.execution`; `parameters` are only data to hand to it."""

    run_id: str
    case: TestCaseSnapshot
    devices: tuple[DeviceSnapshot, ...]
    environment: EnvironmentSnapshot
    # the case's parameters: its defaults overlaid with the run's parameters
    parameters: Mapping[str, Any]
    log: RunLog = NOWHERE
    artifacts: ArtifactSink = NOWHERE


class CancelSignal(Protocol):
    """Set when the executor must stop (cancelled run, timeout, runner shutting down).
    `threading.Event` is one; executors wait on it instead of sleeping."""

    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


ReportPartial = Callable[[ResultReport], None]


class Executor(Protocol):
    def execute(
        self, request: ExecutionRequest, cancel: CancelSignal, report_partial: ReportPartial
    ) -> list[ResultReport]:
        """One result per device of the request. Calls `report_partial` with each result as
        soon as it is known (optional), returns early once `cancel` is set (what it returns
        then is discarded) and raises only when it could not execute the case at all."""
        ...


class CallbackStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # 200
    FINISHED = "finished"  # 409: the run finished or was cancelled: nothing left to do
    # 409 run_claimed: another runner holds a live claim; `retry_after_s` says when it lapses
    # (on `started`: ask again then), none on `progress`: this runner lost the run, stop
    CLAIMED = "claimed"
    UNAUTHORIZED = "unauthorized"  # 401 / 403: the credential will never work
    UNKNOWN_RUN = "unknown_run"  # 404
    REJECTED = "rejected"  # 422 and other 4xx: the runner sent something the API refuses
    UNAVAILABLE = "unavailable"  # 5xx, 429 or no connection, retried until the caller's limit


@dataclass(frozen=True)
class CallbackReply:
    status: CallbackStatus
    http_status: int | None = None
    code: str = ""  # the error code of the API's error body, e.g. "run_finished"
    message: str = ""
    retry_after_s: float | None = None  # CLAIMED: when the other runner's claim lapses
    # CLAIMED on `started`: "runner_drained" when an admin drained this runner
    reason: str = ""
    log_truncated: bool = False  # logs: the run's log is full; send no more lines


@dataclass(frozen=True)
class RunnerLogLine:
    at: datetime
    level: str  # debug | info | warning | error
    message: str
    device_id: str | None = None
    test_case_id: str | None = None


class CallbackClient(Protocol):
    """The callback API of one devicelab server. Every method retries what may succeed later
    (5xx, 429, connection errors) with backoff until `give_up_at`, then answers UNAVAILABLE;
    it never raises for an HTTP answer."""

    def started(self, callback: Callback, runner: str, give_up_at: datetime) -> CallbackReply: ...

    def progress(
        self,
        callback: Callback,
        progress: float,
        message: str,
        partial_results: Sequence[ResultReport],
        give_up_at: datetime,
        runner: str = "",
    ) -> CallbackReply:
        """A heartbeat; naming the runner renews its claim on the run."""
        ...

    def result(
        self, callback: Callback, results: Sequence[ResultReport], give_up_at: datetime
    ) -> CallbackReply: ...

    def failed(self, callback: Callback, reason: str, give_up_at: datetime) -> CallbackReply: ...

    def released(self, callback: Callback, runner: str, give_up_at: datetime) -> CallbackReply:
        """Give the run back before requeueing its job (this runner is stopping)."""
        ...

    def logs(
        self, callback: Callback, lines: Sequence[RunnerLogLine], give_up_at: datetime
    ) -> CallbackReply:
        """A batch of log lines (in order; at most MAX_BATCH_LINES, each message at most
        MAX_MESSAGE_CHARS: domain.run_logs)."""
        ...

    def upload_artifact(
        self,
        callback: Callback,
        path: str,
        name: str,
        content_type: str,
        device_id: str | None,
        test_case_id: str | None,
        give_up_at: datetime,
    ) -> CallbackReply:
        """The file at `path`, streamed from disk."""
        ...


class MetricsWriter(Protocol):
    """Writes the measurements of finished (test case, device) pairs somewhere for dashboards.
    Best effort: the runner logs a failure and carries on."""

    def write(self, run_id: str, results: Sequence[ResultReport]) -> None: ...
