"""Use cases of a test run's life: start, the runner's reports, cancel, expiry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from application.errors import NotFound
from application.job_contract import CANCEL_KIND, JOB_KIND, cancel_payload, job_payload
from application.pagination import Page, paginate
from application.ports import (
    Clock,
    IdGenerator,
    OutboxMessage,
    RunFilter,
    UnitOfWork,
)
from application.ports import (
    UnitOfWorkFactory as UowFactory,
)
from application.use_cases.admission import (
    check_request,
    lock_named_devices,
    refuse_unsatisfiable,
    why_not_now,
)
from application.use_cases.runners import note_report, note_run_ended
from application.use_cases.scheduling import (
    ScheduleWaitingRuns,
    after_devices_freed,
    schedule_in,
)
from domain.booking import release_devices_of
from domain.errors import InvalidValue, RunClaimed
from domain.runners import RunnerInfo
from domain.scheduling import DeviceRequest, Priority
from domain.test_cases import with_parameters
from domain.test_runs import ResultReport, TestRun

RUNNER = "runner"


def run_key(run: TestRun) -> tuple:
    return (run.created_at.isoformat(), run.id)


def _load_run(uow: UnitOfWork, run_id: str, for_update: bool = False) -> TestRun:
    run = uow.test_runs.get(run_id, for_update=for_update)
    if run is None:
        raise NotFound("test run", run_id)
    return run


DEFAULT_QUEUE_TIMEOUT_S = 24 * 3600


@dataclass(frozen=True)
class StartTestRunRequest:
    """What to run where. Devices are named (`device_ids`) or asked for by kind
    (`device_requests`), or both. When they are busy the run waits in the queue
    (`when_busy="queue"`) for at most `queue_timeout_s`, or is refused (`"reject"`).
    `priority` high is for engineers and admins: they are the only ones who may start runs
    at all (Permission.RUN_TESTS), so whoever gets here may use it; it is recorded on the run."""

    __test__ = False

    test_case_ids: list[str]
    environment_id: str
    device_ids: list[str]
    parameters: dict[str, Any] = field(default_factory=dict)
    started_by: str = "system"
    device_requests: list[DeviceRequest] = field(default_factory=list)
    when_busy: str = "queue"
    priority: str = Priority.NORMAL.value
    queue_timeout_s: float | None = None


class StartTestRun:
    """Validate, then put the run in the queue and make a scheduling pass in the same
    transaction: on free devices with nobody waiting before it, the run is booked (all its
    devices or none) and its job queued at once, as a start always was; otherwise it waits,
    and a run never overtakes one that waits before it. With `when_busy="reject"` a run that
    could not start is refused (DeviceUnavailable) and nothing is kept. A run never exists
    without its job once it is queued, nor a job without its run."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        ids: IdGenerator,
        queue_allowance_s: float = 600,
        queue_timeout_s: float = DEFAULT_QUEUE_TIMEOUT_S,
    ) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids
        self.queue_allowance_s = queue_allowance_s
        self.queue_timeout_s = queue_timeout_s

    def __call__(self, request: StartTestRunRequest) -> TestRun:
        with self.uow() as uow:
            now = self.clock.now()
            run = submit_run(
                uow, self.ids, now, request, self.queue_allowance_s, self.queue_timeout_s
            )
            outcome = schedule_in(uow, self.ids, now)
            if run.id not in outcome.started and request.when_busy == "reject":
                # leaving the block without a commit rolls the run back
                raise why_not_now(run.id, uow, now)
            run = _load_run(uow, run.id)  # as the pass left it: booked, or still waiting
            uow.commit()
        return run


def submit_run(
    uow: UnitOfWork,
    ids: IdGenerator,
    now: datetime,
    request: StartTestRunRequest,
    queue_allowance_s: float,
    queue_timeout_s: float,
) -> TestRun:
    """Check a start and put its run in the queue of the open transaction, without a
    scheduling pass (the caller makes one, once for all the runs it adds: a plan run adds
    several) and without committing."""
    check_request(request.device_ids, request.device_requests, request.when_busy, "a run")
    if len(set(request.test_case_ids)) != len(request.test_case_ids):
        raise InvalidValue("test_case_ids", "each test case may appear only once")
    cases = [uow.test_cases.get(i) for i in request.test_case_ids]
    unknown = [i for i, c in zip(request.test_case_ids, cases, strict=True) if c is None]
    if unknown:
        raise InvalidValue("test_case_ids", f"unknown test case(s): {', '.join(unknown)}")
    environment = uow.environments.get(request.environment_id)
    if environment is None:
        raise InvalidValue("environment_id", f"unknown environment: {request.environment_id}")
    # the queue lock before any device row (see application/use_cases/scheduling.py)
    uow.test_runs.lock_queue()
    named = lock_named_devices(uow, request.device_ids)
    run = TestRun.submit(
        id=ids.new_id(),
        test_cases=[with_parameters(c.snapshot(), request.parameters) for c in cases if c],
        environment=environment.snapshot(),
        device_ids=request.device_ids,
        device_requests=request.device_requests,
        started_by=request.started_by,
        at=now,
        queue_allowance_s=queue_allowance_s,
        queue_timeout_s=(
            queue_timeout_s if request.queue_timeout_s is None else request.queue_timeout_s
        ),
        priority=request.priority,
        parameters=request.parameters,
    )
    refuse_unsatisfiable(uow, run.demand, named)
    uow.test_runs.add(run)
    return run


class GetTestRun:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, run_id: str) -> TestRun:
        with self.uow() as uow:
            return _load_run(uow, run_id)


def check_run_filter(where: RunFilter) -> None:
    if where.created_from and where.created_to and where.created_from > where.created_to:
        raise InvalidValue("from", "must not be after 'to'")


class ListTestRuns:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(
        self, where: RunFilter, limit: int | None = None, cursor: str | None = None
    ) -> Page[TestRun]:
        check_run_filter(where)
        with self.uow() as uow:
            return paginate(
                "test_runs",
                lambda n, after: uow.test_runs.list(where, n, after),
                run_key,
                limit,
                cursor,
            )


@dataclass(frozen=True)
class RunReportOutcome:
    run: TestRun
    changed: bool
    released_device_ids: list[str] = field(default_factory=list)


class _RunTransition:
    """Load the run under lock, apply a transition; when the run ends, release its devices
    in the same transaction. Shared by every report and command that can end a run."""

    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def _apply(
        self,
        run_id: str,
        transition: Callable[[TestRun], bool],
        actor: str = RUNNER,
        reporter: RunnerReport | None = None,
    ) -> RunReportOutcome:
        """`reporter`: the runner that sent the report, for the registry (runners.py);
        with `claiming`, a drained one is refused. What the registry learnt from a refused
        claim is kept: the runner was heard all the same."""
        with self.uow() as uow:
            run = _load_run(uow, run_id, for_update=True)
            was_waiting = run.waiting
            runner = None
            if reporter is not None:
                runner = note_report(uow, reporter.runner, reporter.info, self.clock.now())
            try:
                if runner is not None and reporter is not None and reporter.claiming:
                    runner.check_may_start(run)
                changed = transition(run)
            except RunClaimed:
                if runner is not None:
                    uow.commit()
                raise
            released: list[str] = []
            if changed:
                if run.status.finished:
                    devices = uow.devices.get_many_for_update(run.device_ids)
                    released = release_devices_of(run, devices, self.clock.now(), actor)
                    for device in devices:
                        if device.id in released:
                            uow.devices.update(device)
                    note_run_ended(uow, run, self.clock.now())
                elif runner is not None and reporter is not None and reporter.claiming:
                    uow.runners.update(runner)  # its current run changed: show it
                uow.test_runs.update(run)
                self._after_change(uow, run, was_waiting)
                uow.commit()
        if changed and run.status.finished:
            # devices went free (or a waiting run stopped keeping them): book them for the
            # queue. After the commit, not in it: a pass takes the queue lock before device
            # rows, and this transaction held device rows (scheduling.py explains).
            after_devices_freed(ScheduleWaitingRuns(self.uow, self.clock, self.ids))
        return RunReportOutcome(run, changed, released)

    def _after_change(self, uow: UnitOfWork, run: TestRun, was_waiting: bool) -> None:
        """Hook for transitions that must tell the runners something."""


@dataclass(frozen=True)
class RunnerReport:
    """Who sent a report, with what it says about itself; `claiming` for `started`."""

    runner: str
    info: RunnerInfo = field(default_factory=RunnerInfo)
    claiming: bool = False


class RecordRunStarted(_RunTransition):
    """A runner took the job. Another runner is refused (RunClaimed) while the claimant's
    heartbeats keep coming; once it has been silent longer than the claim lease (it died
    and the broker redelivered the job), the other one takes over. The claim lease is much
    shorter than the progress lease, so a crashed runner's job runs again soon."""

    def __init__(
        self, uow: UowFactory, clock: Clock, ids: IdGenerator, claim_lease_s: float = 20
    ) -> None:
        super().__init__(uow, clock, ids)
        self.claim_lease_s = claim_lease_s

    def __call__(
        self, run_id: str, runner: str = "", info: RunnerInfo | None = None
    ) -> RunReportOutcome:
        """A drained runner is refused (RunnerDrained, a RunClaimed) unless it holds the
        run already."""
        now = self.clock.now()
        reporter = RunnerReport(runner, info or RunnerInfo(), claiming=True)
        return self._apply(
            run_id, lambda run: run.start(now, runner, self.claim_lease_s), reporter=reporter
        )


class RecordRunReleased(_RunTransition):
    """A stopping runner gives its run back (its job goes back to the queue)."""

    def __call__(self, run_id: str, runner: str) -> RunReportOutcome:
        now = self.clock.now()
        return self._apply(run_id, lambda run: run.give_back(now, runner))


@dataclass(frozen=True)
class ProgressReport:
    progress: float
    message: str = ""
    partial_results: list[ResultReport] = field(default_factory=list)
    runner: str = ""  # who reports: a runner that lost its claim is told to stop
    info: RunnerInfo = field(default_factory=RunnerInfo)  # what it says about itself


class RecordRunProgress(_RunTransition):
    def __init__(
        self, uow: UowFactory, clock: Clock, ids: IdGenerator, lease_s: float = 300
    ) -> None:
        super().__init__(uow, clock, ids)
        self.lease_s = lease_s

    def __call__(self, run_id: str, report: ProgressReport) -> RunReportOutcome:
        now = self.clock.now()
        return self._apply(
            run_id,
            lambda run: run.record_progress(
                now,
                report.progress,
                report.message,
                report.partial_results,
                self.lease_s,
                report.runner,
            ),
            reporter=RunnerReport(report.runner, report.info),
        )


class RecordRunResult(_RunTransition):
    """Final results: the run completes, its verdict is computed, its devices go free."""

    def __call__(self, run_id: str, reports: list[ResultReport]) -> RunReportOutcome:
        now = self.clock.now()
        return self._apply(run_id, lambda run: run.complete(now, reports))

    def _after_change(self, uow: UnitOfWork, run: TestRun, was_waiting: bool) -> None:
        if not run.is_health_check:  # it judged a device, not the firmware
            uow.results.record_completed(run)  # the comparison's sums, in the same transaction


class RecordRunFailure(_RunTransition):
    """The runner could not execute the run (an error on its side)."""

    def __call__(self, run_id: str, reason: str) -> RunReportOutcome:
        now = self.clock.now()
        return self._apply(run_id, lambda run: run.fail(now, reason))


class CancelTestRun(_RunTransition):
    def __call__(self, run_id: str, by: str, reason: str = "") -> RunReportOutcome:
        now = self.clock.now()
        return self._apply(run_id, lambda run: run.abort(now, by, reason), actor=by)

    def _after_change(self, uow: UnitOfWork, run: TestRun, was_waiting: bool) -> None:
        if was_waiting:
            return  # no job was sent for it: no runner to tell
        uow.outbox.add(
            OutboxMessage(
                self.ids.new_id(), CANCEL_KIND, run.id, cancel_payload(run), self.clock.now()
            )
        )


class ExpireOverdueRuns(_RunTransition):
    """Runs past their deadline fail with reason "timeout" and free their devices. Each run
    is handled in its own transaction and re-checked under lock, so a late report and the
    reaper never both win."""

    def __call__(self, batch: int = 200) -> list[str]:
        with self.uow() as uow:
            overdue = uow.test_runs.list_overdue(self.clock.now(), batch)
        expired = []
        for run_id in overdue:
            now = self.clock.now()
            outcome = self._apply(run_id, lambda run, now=now: run.expire(now), actor="reaper")
            if outcome.changed:
                expired.append(run_id)
        return expired


class ReofferAbandonedJobs(_RunTransition):
    """A claimed run whose runner fell silent gets its job written to the outbox again.

    A broker such as RabbitMQ hands a dead consumer's unacked message to another consumer
    by itself; kombu's SQLAlchemy transport (the embedded broker) never does, so without
    this the run would wait for the reaper. `silent_for_s` is longer than the claim lease,
    so by then a redelivered copy has normally been taken over already, and whoever gets
    the new copy takes the run over at once. Each run is re-offered at most `max_reoffers`
    times, each time only after as long a silence again; after that the reaper has it.
    Each re-offer is one transaction with the run locked and re-checked, so several workers
    (or a report arriving meanwhile) never make two copies of one silence. A second copy of
    a job is harmless: `started` tells its runner the run is claimed or finished."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        ids: IdGenerator,
        silent_for_s: float = 40,
        max_reoffers: int = 3,
    ) -> None:
        super().__init__(uow, clock, ids)
        self.silent_for_s, self.max_reoffers = silent_for_s, max_reoffers

    def __call__(self, batch: int = 200) -> list[str]:
        if self.max_reoffers <= 0:
            return []
        now = self.clock.now()
        with self.uow(read_only=True) as uow:
            silent = uow.test_runs.list_silent_claims(
                now - timedelta(seconds=self.silent_for_s), self.max_reoffers, batch
            )
        offered = []
        for run_id in silent:
            outcome = self._apply(run_id, self._offer_again, actor="worker")
            if outcome.changed:
                offered.append(run_id)
        return offered

    def _offer_again(self, run: TestRun) -> bool:
        return run.offer_again(self.clock.now(), self.silent_for_s, self.max_reoffers)

    def _after_change(self, uow: UnitOfWork, run: TestRun, was_waiting: bool) -> None:
        now = self.clock.now()
        uow.outbox.add(OutboxMessage(self.ids.new_id(), JOB_KIND, run.id, job_payload(run), now))
