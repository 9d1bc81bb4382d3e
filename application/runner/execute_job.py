"""The Test Runner's use case: execute one job and decide what becomes of its message.

A job is acknowledged only once its outcome reached devicelab (the result, or a failure), or
once devicelab said there is nothing left to do (409: the run finished or was cancelled). A
message that can never succeed (unparseable, unknown contract version, a credential the server
refuses, an unknown run) is dead-lettered. Everything else — devicelab unreachable for too long,
the runner shutting down — gives the message back to the queue.

A job whose run another runner claims (409 run_claimed on `started`: a redelivered copy) is
neither dropped nor executed at once: the runner asks again when the claim would lapse, so a
crashed claimant's run is taken over within the claim lease; a claimant that stays alive past
the claim patience gets the job deferred (back to the queue, not to be tried again before a
delay), never a hot requeue loop.

Executors run in a thread of their own, so the use case can send a heartbeat every few seconds,
notice a cancellation and enforce each test case's timeout while they work; every callback is
sent from the calling thread, one after the other, so the server sees them in order."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from application.ports import Clock
from application.runner.jobs import InvalidJob, Job, parse_cancellation, parse_job
from application.runner.ports import (
    CallbackClient,
    CallbackReply,
    CallbackStatus,
    ExecutionRequest,
    Executor,
    MetricsWriter,
)
from application.runner.run_log import ArtifactUploader, LogShipper
from domain.test_cases import TestCaseSnapshot
from domain.test_runs import ResultReport

if TYPE_CHECKING:
    from application.runner.drain import DrainState

log = logging.getLogger(__name__)

# asked again this long after the claim would lapse, so the server sees it lapsed
CLAIM_MARGIN_S = 0.25
# progress stays below this until the result is delivered
PROGRESS_CAP = 0.99
RUNNER_DRAINED = "runner_drained"  # the reason of the 409 on a drained runner's claim


class Disposition(enum.StrEnum):
    """What the message queue must do with the job's message."""

    ACK = "ack"  # done with it: the outcome reached devicelab, or there is nothing left to do
    DEAD_LETTER = "dead_letter"  # it can never succeed: move it to the dead-letter queue, ack
    REQUEUE = "requeue"  # not done here: give it back so a runner takes it again
    # not now: give it back to the end of the queue, not to be taken before `delay_s`
    DEFER = "defer"


@dataclass(frozen=True)
class JobOutcome:
    disposition: Disposition
    # completed | failed | run_finished | run_claimed | claim_lost | cancelled | shutdown |
    # backend_unavailable | unauthorized | unknown_run | invalid_job |
    # unsupported_contract_version
    reason: str
    detail: str = ""
    run_id: str | None = None
    delay_s: float = 0.0  # DEFER: how long the message waits before a runner takes it again


@dataclass(frozen=True)
class RunnerOptions:
    runner_id: str
    default_executor: str = "simulate"
    heartbeat_s: float = 2.0
    # A callback that fails with 5xx or no connection is retried until the job's deadline,
    # and at least this long (a redelivered job's deadline may have passed already).
    callback_patience_s: float = 60.0
    # How far past a case's timeout the runner waits before it stops the executor itself
    # (executors enforce the timeout; this catches one that does not).
    timeout_grace_s: float = 10.0
    # How long a stopped executor may take to return before its thread is abandoned.
    stop_grace_s: float = 10.0
    # How long a job whose run another runner claims is held, asking again as the claim
    # would lapse, before it is deferred for as long again. At least the claim lease, so a
    # crashed claimant's run is taken over by the first runner that gets its job.
    claim_patience_s: float = 60.0


class StopReason(enum.StrEnum):
    CANCELLED = "cancelled"  # a control message: the run was cancelled
    FINISHED = "run_finished"  # a progress report got 409
    CLAIM_LOST = "claim_lost"  # a progress report got 409 run_claimed: another runner has it
    SHUTDOWN = "shutdown"  # this runner is stopping
    TIMEOUT = "timeout"
    UNAUTHORIZED = "unauthorized"  # a progress report got 401 / 403
    UNKNOWN_RUN = "unknown_run"  # a progress report got 404
    REJECTED = "rejected"  # a progress report got 422: a bug in the runner


class RunControl:
    """Stops one run's execution; the executor sees `event` set."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: StopReason | None = None
        self.detail = ""
        self._lock = threading.Lock()

    def stop(self, reason: StopReason, detail: str = "") -> bool:
        with self._lock:
            if self.reason is not None:
                return False
            self.reason, self.detail = reason, detail
        self.event.set()
        return True

    @property
    def stopped(self) -> bool:
        return self.reason is not None


class RunningJobs:
    """The runs executing in this process, so that a cancellation or a shutdown reaches them."""

    def __init__(self) -> None:
        self._controls: dict[str, RunControl] = {}
        self._closed = False
        self._lock = threading.Lock()

    def register(self, run_id: str) -> RunControl:
        control = RunControl()
        with self._lock:
            closed = self._closed
            if not closed:
                self._controls[run_id] = control
        if closed:
            control.stop(StopReason.SHUTDOWN)
        return control

    def release(self, run_id: str, control: RunControl) -> None:
        with self._lock:
            if self._controls.get(run_id) is control:
                del self._controls[run_id]

    def stop(self, run_id: str, reason: StopReason, detail: str = "") -> bool:
        with self._lock:
            control = self._controls.get(run_id)
        return control is not None and control.stop(reason, detail)

    def shut_down(self) -> None:
        """Stop every run executing here and refuse new ones: the runner is stopping."""
        with self._lock:
            self._closed = True
            controls = list(self._controls.values())
        for control in controls:
            control.stop(StopReason.SHUTDOWN)

    @property
    def run_ids(self) -> list[str]:
        with self._lock:
            return list(self._controls)


class CancelJob:
    """A control message said a run was cancelled: stop it if it executes here."""

    def __init__(self, running: RunningJobs) -> None:
        self.running = running

    def __call__(self, message: bytes | str | Mapping[str, Any]) -> bool:
        """True when the run was executing here; raises InvalidJob for a broken message."""
        cancellation = parse_cancellation(message)
        stopped = self.running.stop(cancellation.run_id, StopReason.CANCELLED, cancellation.reason)
        if stopped:
            log.info(
                "run %s was cancelled (%s); stopping it", cancellation.run_id, cancellation.reason
            )
        return stopped


def _wait_on(event: threading.Event, seconds: float) -> bool:
    return event.wait(seconds)


class ExecuteJob:
    def __init__(
        self,
        callbacks: CallbackClient,
        executors: Mapping[str, Executor],
        clock: Clock,
        running: RunningJobs,
        options: RunnerOptions,
        metrics: MetricsWriter | None = None,
        pause: Callable[[threading.Event, float], bool] = _wait_on,
        drain: DrainState | None = None,
    ) -> None:
        """`pause(stop, seconds)` waits between tries of a claimed run and returns True
        when `stop` was set meanwhile (by default it waits on the event). `drain` learns
        from `started` whether an admin drained this runner (drain.py)."""
        if options.default_executor not in executors:
            raise ValueError(
                f"default executor {options.default_executor!r} is not one of {sorted(executors)}"
            )
        self.callbacks, self.executors, self.clock = callbacks, dict(executors), clock
        self.running, self.options, self.metrics = running, options, metrics
        self.pause, self.drain = pause, drain

    def __call__(self, message: bytes | str | Mapping[str, Any]) -> JobOutcome:
        try:
            job = parse_job(message)
        except InvalidJob as error:
            log.error("dead-lettering a job message: %s", error.message)
            return JobOutcome(Disposition.DEAD_LETTER, error.code, error.message)
        control = self.running.register(job.run_id)
        try:
            return _Execution(self, job, control).run()
        finally:
            self.running.release(job.run_id, control)


class _Execution:
    """One job's way through: started, each test case with heartbeats, result or failure."""

    def __init__(self, use_case: ExecuteJob, job: Job, control: RunControl) -> None:
        self.job, self.control = job, control
        self.callbacks, self.clock = use_case.callbacks, use_case.clock
        self.options, self.metrics = use_case.options, use_case.metrics
        self.executors, self.pause = use_case.executors, use_case.pause
        self.drain = use_case.drain
        self.deadline = job.deadline
        self.cases_done = 0
        self.current_case: TestCaseSnapshot | None = None
        self.case_started_at: datetime | None = None  # while the current case executes
        self.pending: dict[tuple[str, str], ResultReport] = {}  # partial results not yet sent
        self.pending_lock = threading.Lock()
        self.run_log: LogShipper | None = None  # once the run is ours (started accepted)
        self.artifacts: ArtifactUploader | None = None

    # -- the way through -------------------------------------------------------------------

    def run(self) -> JobOutcome:
        job = self.job
        # first ask devicelab whether this job is still ours to do (a redelivery may not be)
        reply = self._claim()
        if reply.status is CallbackStatus.CLAIMED and reply.reason == RUNNER_DRAINED:
            # an admin drained this runner: the job goes back for another runner at once
            if self.drain is not None:
                self.drain.drain(reply.message or "devicelab refused its claim")
            log.warning("run %s: this runner is drained; giving the job back", job.run_id)
            return self._outcome(Disposition.REQUEUE, RUNNER_DRAINED, _describe(reply))
        if reply.status is CallbackStatus.CLAIMED:
            if self.control.stopped:
                return self._stopped(claimed=False)
            return self._defer(reply)
        if reply.status is not CallbackStatus.ACCEPTED:
            return self._after_refusal("started", reply)
        if self.drain is not None:
            self.drain.undrain("devicelab accepted its claim of run " + job.run_id)
        # started extends the run's deadline to at least now + the cases' timeouts
        self.deadline = max(self.deadline, self.clock.now() + timedelta(seconds=job.timeout_s))
        self.run_log = LogShipper(self.callbacks, job.callback, self.clock)
        self.artifacts = ArtifactUploader(self.callbacks, job.callback, self.clock, self.run_log)
        try:
            return self._execute()
        finally:
            self.run_log.close()

    def _execute(self) -> JobOutcome:
        job = self.job
        chosen = self._choose_executors()
        if isinstance(chosen, str):
            return self._fail(chosen)
        log.info("run %s started: %d test case(s)", job.run_id, len(job.test_cases))
        self.run_log.write(
            "info",
            f"[runner] {self.options.runner_id} started the run: {len(job.test_cases)} test "
            f"case(s) on {len(job.devices)} device(s)",
        )
        results: list[ResultReport] = []
        for case in job.test_cases:
            if self.control.stopped:
                return self._stopped()
            self.run_log.write("info", f"[runner] test case {case.name!r} started", None, case.id)
            outcome = self._run_case(case, chosen[case.id])
            if isinstance(outcome, JobOutcome):
                return outcome
            results.extend(outcome)
            self.cases_done += 1
            self._log_case_results(case, outcome)
            self._write_metrics(outcome)
            if self.cases_done < len(job.test_cases):  # after the last one, the result follows
                self._send_progress(f"{self.cases_done}/{len(job.test_cases)} test cases done")
        if self.control.stopped:
            return self._stopped()
        return self._deliver(results)

    def _log_case_results(self, case: TestCaseSnapshot, results: Sequence[ResultReport]) -> None:
        for result in results:
            measured = ", ".join(f"{o.metric}={o.value:g}{o.unit}" for o in result.observations)
            text = f"[runner] test case {case.name!r} done: {measured or 'nothing measured'}"
            if result.message:
                text += f" ({result.message})"
            level = "error" if result.error else "info"
            self.run_log.write(level, text, result.device_id, case.id)

    def _claim(self) -> CallbackReply:
        """`started`; while another runner holds a live claim, asked again as it would lapse
        (a crashed claimant is silent, so its run is taken over then), for at most the claim
        patience, and not after this runner was told to stop."""
        patience_ends = self.clock.now() + timedelta(seconds=self.options.claim_patience_s)
        while True:
            reply = self.callbacks.started(
                self.job.callback, self.options.runner_id, self._give_up_at()
            )
            if reply.status is not CallbackStatus.CLAIMED or reply.retry_after_s is None:
                return reply
            pause_s = reply.retry_after_s + CLAIM_MARGIN_S
            if self.clock.now() + timedelta(seconds=pause_s) > patience_ends:
                return reply
            log.info(
                "run %s: %s; asking again in %.1f s", self.job.run_id, _describe(reply), pause_s
            )
            if self.pause(self.control.event, pause_s):
                return reply

    def _defer(self, reply: CallbackReply) -> JobOutcome:
        delay_s = self.options.claim_patience_s
        detail = f"started: {_describe(reply)}"
        log.warning(
            "run %s: still claimed by another runner after %.0f s; deferring the job for "
            "%.0f s (%s)",
            self.job.run_id,
            self.options.claim_patience_s,
            delay_s,
            detail,
        )
        return JobOutcome(Disposition.DEFER, "run_claimed", detail, self.job.run_id, delay_s)

    def _choose_executors(self) -> dict[str, Executor] | str:
        chosen: dict[str, Executor] = {}
        for case in self.job.test_cases:
            # from the case's definition only: a run's parameters never choose what runs
            name = case.execution.executor or self.options.default_executor
            if name not in self.executors:
                return (
                    f"test case {case.name!r} asks for executor {name!r}; this runner has "
                    f"{', '.join(sorted(self.executors))}"
                )
            chosen[case.id] = self.executors[name]
        return chosen

    def _run_case(
        self, case: TestCaseSnapshot, executor: Executor
    ) -> list[ResultReport] | JobOutcome:
        job = self.job
        request = ExecutionRequest(
            job.run_id,
            case,
            job.devices,
            job.environment,
            case.parameters,
            log=self.run_log,
            artifacts=self.artifacts,
        )
        self.current_case = case
        done = threading.Event()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["results"] = executor.execute(request, self.control.event, self._collect)
            except Exception as error:  # reported as the run's failure
                box["error"] = error
            finally:
                done.set()

        started_at = self.clock.now()
        give_up = started_at + timedelta(seconds=case.timeout_s + self.options.timeout_grace_s)
        thread = threading.Thread(target=work, name=f"executor {job.run_id}", daemon=True)
        self.case_started_at = started_at
        thread.start()
        while not done.wait(self.options.heartbeat_s):
            if self.control.stopped:
                break
            if self.clock.now() > give_up:
                self.control.stop(
                    StopReason.TIMEOUT,
                    f"test case {case.name!r} did not finish within its timeout of "
                    f"{case.timeout_s} s",
                )
                break
            self._send_progress(f"{case.name}: running on {len(job.devices)} device(s)")
            if self.control.stopped:
                break
        self.case_started_at = None
        if not done.is_set():
            self._wait_for_executor(done, case)
        if self.control.stopped:
            return self._stopped()
        if "error" in box:
            error = box["error"]
            log.error("executor failed on run %s", job.run_id, exc_info=error)
            return self._fail(f"test case {case.name!r}: {type(error).__name__}: {error}")
        return self._complete(case, box.get("results") or [], started_at)

    def _wait_for_executor(self, done: threading.Event, case: TestCaseSnapshot) -> None:
        self.control.event.set()
        if not done.wait(self.options.stop_grace_s):
            log.error(
                "the executor of run %s (test case %s) did not stop within %s s; abandoning it",
                self.job.run_id,
                case.name,
                self.options.stop_grace_s,
            )

    # -- results ---------------------------------------------------------------------------

    def _collect(self, report: ResultReport) -> None:
        """An executor's partial result (called from the executor's thread)."""
        case = self.current_case
        if case is None or not self._belongs(case, report):
            return
        with self.pending_lock:
            self.pending[(report.test_case_id, report.device_id)] = report

    def _belongs(self, case: TestCaseSnapshot, report: ResultReport) -> bool:
        if report.test_case_id == case.id and report.device_id in {d.id for d in self.job.devices}:
            return True
        log.warning(
            "run %s: ignoring a result for test case %s on device %s from the executor of %s",
            self.job.run_id,
            report.test_case_id,
            report.device_id,
            case.id,
        )
        return False

    def _complete(
        self, case: TestCaseSnapshot, returned: Sequence[ResultReport], started_at: datetime
    ) -> list[ResultReport]:
        """Exactly one result per device: the executor's last one, or an error result."""
        now = self.clock.now()
        by_device = {r.device_id: r for r in returned if self._belongs(case, r)}
        results = []
        for device in self.job.devices:
            report = by_device.get(device.id) or ResultReport(
                case.id, device.id, message="the executor returned no result", error=True
            )
            results.append(
                replace(
                    report,
                    started_at=report.started_at or started_at,
                    finished_at=report.finished_at or now,
                )
            )
        with self.pending_lock:
            for report in results:
                self.pending[(report.test_case_id, report.device_id)] = report
        return results

    def _write_metrics(self, results: Sequence[ResultReport]) -> None:
        if self.metrics is None:
            return
        try:
            self.metrics.write(self.job.run_id, results)
        except Exception:
            log.warning("could not write the metrics of run %s", self.job.run_id, exc_info=True)

    # -- callbacks ---------------------------------------------------------------------------

    def _give_up_at(self) -> datetime:
        patience = self.clock.now() + timedelta(seconds=self.options.callback_patience_s)
        return max(self.deadline, patience)

    def _send_progress(self, message: str) -> None:
        """A heartbeat with the partial results not yet sent; a refusal stops the run."""
        with self.pending_lock:
            sending = dict(self.pending)
        # a heartbeat is not retried: the next one follows soon, with the same partials
        reply = self.callbacks.progress(
            self.job.callback,
            self._fraction_done(),
            message,
            list(sending.values()),
            self.clock.now(),
            self.options.runner_id,
        )
        if reply.status is CallbackStatus.ACCEPTED:
            with self.pending_lock:
                for key, report in sending.items():
                    if self.pending.get(key) is report:
                        del self.pending[key]
            return
        if reply.status is CallbackStatus.UNAVAILABLE:
            log.warning("run %s: progress report not delivered: %s", self.job.run_id, reply.message)
            return
        reason = {
            CallbackStatus.FINISHED: StopReason.FINISHED,
            CallbackStatus.CLAIMED: StopReason.CLAIM_LOST,
            CallbackStatus.UNAUTHORIZED: StopReason.UNAUTHORIZED,
            CallbackStatus.UNKNOWN_RUN: StopReason.UNKNOWN_RUN,
            CallbackStatus.REJECTED: StopReason.REJECTED,
        }[reply.status]
        self.control.stop(reason, _describe(reply))

    def _fraction_done(self) -> float:
        """Finished cases, plus the running case's share by its planned duration: a one-case
        run moves too. Below 1 until the result is delivered."""
        cases = len(self.job.test_cases)
        in_case = 0.0
        case, started_at = self.current_case, self.case_started_at
        if case is not None and started_at is not None and case.duration_s > 0:
            elapsed_s = (self.clock.now() - started_at).total_seconds()
            in_case = min(1.0, max(0.0, elapsed_s / case.duration_s))
        return min(PROGRESS_CAP, (self.cases_done + in_case) / cases)

    def _deliver(self, results: list[ResultReport]) -> JobOutcome:
        self.run_log.close()  # every line is in before the run finishes (and takes no more)
        reply = self.callbacks.result(self.job.callback, results, self._give_up_at())
        if reply.status is CallbackStatus.ACCEPTED:
            log.info("run %s: results delivered", self.job.run_id)
            return self._outcome(Disposition.ACK, "completed")
        return self._after_refusal("result", reply)

    def _fail(self, reason: str) -> JobOutcome:
        log.warning("run %s: reporting failure: %s", self.job.run_id, reason)
        if self.run_log is not None:
            self.run_log.write("error", f"[runner] the run failed: {reason}")
            self.run_log.close()
        reply = self.callbacks.failed(self.job.callback, reason[:2000], self._give_up_at())
        if reply.status is CallbackStatus.ACCEPTED:
            return self._outcome(Disposition.ACK, "failed", reason)
        if reply.status is CallbackStatus.REJECTED:
            log.error(
                "run %s: the failure report was refused: %s", self.job.run_id, _describe(reply)
            )
            return self._outcome(Disposition.ACK, "failed", reason)
        return self._after_refusal("failed", reply)

    def _after_refusal(self, report: str, reply: CallbackReply) -> JobOutcome:
        detail = f"{report}: {_describe(reply)}"
        if reply.status is CallbackStatus.CLAIMED:
            log.info("run %s: another runner has it (%s)", self.job.run_id, detail)
            return self._outcome(Disposition.ACK, "claim_lost", detail)
        if reply.status is CallbackStatus.FINISHED:
            log.info("run %s: nothing left to do (%s)", self.job.run_id, detail)
            return self._outcome(Disposition.ACK, "run_finished", detail)
        if reply.status is CallbackStatus.UNAVAILABLE:
            log.error(
                "run %s: devicelab unavailable, giving the job back (%s)", self.job.run_id, detail
            )
            return self._outcome(Disposition.REQUEUE, "backend_unavailable", detail)
        if reply.status is CallbackStatus.REJECTED:
            # the runner sent something the API refuses: a bug in the runner
            log.error(
                "run %s: devicelab refused the %s report (%s)", self.job.run_id, report, detail
            )
            if report == "failed":
                return self._outcome(Disposition.ACK, "failed", detail)
            return self._fail(f"the runner's {report} report was refused: {_describe(reply)}")
        log.error("run %s: dead-lettering the job (%s)", self.job.run_id, detail)
        return self._outcome(Disposition.DEAD_LETTER, reply.status.value, detail)

    def _stopped(self, claimed: bool = True) -> JobOutcome:
        """The run was stopped while executing (or, not `claimed`, while waiting for another
        runner's claim to lapse); what follows depends on why."""
        reason, detail = self.control.reason, self.control.detail
        if reason is StopReason.SHUTDOWN and not claimed:
            log.warning("run %s: runner stopping, giving the job back", self.job.run_id)
            return self._outcome(Disposition.REQUEUE, "shutdown")
        if reason is StopReason.SHUTDOWN:
            log.warning("run %s: runner stopping, giving the job back", self.job.run_id)
            # release the claim first, so the runner that gets the job next may start at once
            give_up = self.clock.now() + timedelta(seconds=min(5.0, self.options.stop_grace_s))
            reply = self.callbacks.released(self.job.callback, self.options.runner_id, give_up)
            if reply.status is not CallbackStatus.ACCEPTED:
                log.warning(
                    "run %s: could not give the run back: %s", self.job.run_id, _describe(reply)
                )
            return self._outcome(Disposition.REQUEUE, "shutdown")
        if reason is StopReason.CANCELLED:
            return self._outcome(Disposition.ACK, "cancelled", detail)
        if reason is StopReason.FINISHED:
            log.info("run %s stopped: %s", self.job.run_id, detail)
            return self._outcome(Disposition.ACK, "run_finished", detail)
        if reason is StopReason.CLAIM_LOST:
            # it was silent past the claim lease and another runner took the run over (with
            # its own copy of the job): this copy has nothing left to do
            log.warning("run %s stopped, another runner took it over: %s", self.job.run_id, detail)
            return self._outcome(Disposition.ACK, "claim_lost", detail)
        if reason in (StopReason.UNAUTHORIZED, StopReason.UNKNOWN_RUN):
            log.error("run %s stopped, dead-lettering the job: %s", self.job.run_id, detail)
            return self._outcome(Disposition.DEAD_LETTER, reason.value, detail)
        if reason is StopReason.REJECTED:
            log.error("run %s: a progress report was refused: %s", self.job.run_id, detail)
            return self._fail(f"the runner's progress report was refused: {detail}")
        return self._fail(detail or "the runner stopped the run")

    def _outcome(self, disposition: Disposition, reason: str, detail: str = "") -> JobOutcome:
        return JobOutcome(disposition, reason, detail, self.job.run_id)


def _describe(reply: CallbackReply) -> str:
    parts = [str(reply.http_status) if reply.http_status else reply.status.value]
    if reply.code:
        parts.append(reply.code)
    if reply.message:
        parts.append(reply.message)
    return " ".join(parts)
