"""In-process twins of the runner's ports: a callback client that calls devicelab's use cases
directly (a runner inside the server process, and tests that look at the run it produced), and
a metrics writer that keeps what it was given."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime

from application.errors import ConcurrentUpdate, NotFound, TooLarge
from application.runner import Callback, CallbackReply, CallbackStatus, RunnerLogLine
from application.use_cases.artifacts import ArtifactUpload, StoreArtifact
from application.use_cases.run_logs import AppendOutcome, AppendRunLogs
from application.use_cases.test_runs import (
    ProgressReport,
    RecordRunFailure,
    RecordRunProgress,
    RecordRunReleased,
    RecordRunResult,
    RecordRunStarted,
)
from domain.errors import (
    ConflictingReport,
    DomainError,
    InvalidTransition,
    InvalidValue,
    RunAlreadyFinished,
    RunClaimed,
)
from domain.run_logs import LogLevel, LogLine
from domain.test_runs import ResultReport


def run_id_of(callback: Callback) -> str:
    """The run a callback block is for: the last segment of its base URL."""
    return callback.base_url.rstrip("/").rsplit("/", 1)[-1]


class InProcessCallbackClient:
    """Reports straight to the use cases behind the callback API, with the same statuses the
    HTTP API would answer. No credential is checked: there is no network to cross."""

    def __init__(
        self,
        record_started: RecordRunStarted,
        record_progress: RecordRunProgress,
        record_result: RecordRunResult,
        record_failure: RecordRunFailure,
        record_released: RecordRunReleased | None = None,
        append_logs: AppendRunLogs | None = None,
        store_artifact: StoreArtifact | None = None,
    ) -> None:
        self.record_started, self.record_progress = record_started, record_progress
        self.record_result, self.record_failure = record_result, record_failure
        self.record_released = record_released
        # without them, lines and files are taken and dropped
        self.append_logs, self.store_artifact = append_logs, store_artifact

    def started(self, callback: Callback, runner: str, give_up_at: datetime) -> CallbackReply:
        return _reply(lambda: self.record_started(run_id_of(callback), runner))

    def released(self, callback: Callback, runner: str, give_up_at: datetime) -> CallbackReply:
        if self.record_released is None:
            return CallbackReply(CallbackStatus.ACCEPTED)
        return _reply(lambda: self.record_released(run_id_of(callback), runner))

    def progress(
        self,
        callback: Callback,
        progress: float,
        message: str,
        partial_results: Sequence[ResultReport],
        give_up_at: datetime,
        runner: str = "",
    ) -> CallbackReply:
        report = ProgressReport(progress, message, list(partial_results), runner)
        return _reply(lambda: self.record_progress(run_id_of(callback), report))

    def result(
        self, callback: Callback, results: Sequence[ResultReport], give_up_at: datetime
    ) -> CallbackReply:
        return _reply(lambda: self.record_result(run_id_of(callback), list(results)))

    def failed(self, callback: Callback, reason: str, give_up_at: datetime) -> CallbackReply:
        return _reply(lambda: self.record_failure(run_id_of(callback), reason))

    def logs(
        self, callback: Callback, lines: Sequence[RunnerLogLine], give_up_at: datetime
    ) -> CallbackReply:
        if self.append_logs is None:
            return CallbackReply(CallbackStatus.ACCEPTED, 200)
        append = self.append_logs
        batch = [
            LogLine(x.at, LogLevel(x.level), x.message, x.device_id, x.test_case_id) for x in lines
        ]
        outcome: list[AppendOutcome] = []
        reply = _reply(lambda: outcome.append(append(run_id_of(callback), batch)))
        if outcome and outcome[0].truncated:
            return replace(reply, log_truncated=True)
        return reply

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
        if self.store_artifact is None:
            return CallbackReply(CallbackStatus.ACCEPTED, 200)
        store = self.store_artifact
        upload = ArtifactUpload(name, content_type, device_id, test_case_id)

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as source:
                while chunk := source.read(64 * 1024):
                    yield chunk

        return _reply(lambda: store(run_id_of(callback), upload, chunks()))


def _reply(report: Callable[[], object]) -> CallbackReply:
    try:
        report()
    except RunClaimed as error:
        return CallbackReply(
            CallbackStatus.CLAIMED,
            409,
            error.code,
            error.message,
            error.retry_after_s,
            getattr(error, "reason", ""),
        )
    except (RunAlreadyFinished, ConflictingReport, InvalidTransition) as error:
        return CallbackReply(CallbackStatus.FINISHED, 409, error.code, error.message)
    except NotFound as error:
        return CallbackReply(CallbackStatus.UNKNOWN_RUN, 404, error.code, error.message)
    except ConcurrentUpdate as error:
        return CallbackReply(CallbackStatus.UNAVAILABLE, 409, error.code, error.message)
    except InvalidValue as error:
        return CallbackReply(CallbackStatus.REJECTED, 422, error.code, error.message)
    except TooLarge as error:
        return CallbackReply(CallbackStatus.REJECTED, 413, error.code, error.message)
    except DomainError as error:
        return CallbackReply(CallbackStatus.REJECTED, 400, error.code, error.message)
    return CallbackReply(CallbackStatus.ACCEPTED, 200)


class RecordedMetrics:
    """Keeps every (run id, result) it is asked to write."""

    def __init__(self) -> None:
        self.written: list[tuple[str, ResultReport]] = []
        self._lock = threading.Lock()

    def write(self, run_id: str, results: Sequence[ResultReport]) -> None:
        with self._lock:
            self.written.extend((run_id, result) for result in results)
