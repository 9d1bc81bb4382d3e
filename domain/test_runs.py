"""Test runs: their lifecycle, the results runners report, and the verdict that follows."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from domain.environments import EnvironmentSnapshot
from domain.errors import (
    ConflictingReport,
    InvalidTransition,
    InvalidValue,
    RunAlreadyFinished,
    RunClaimed,
)
from domain.scheduling import Demand, DeviceRequest, Priority
from domain.test_cases import Criterion, Outcome, Statistic, TestCaseSnapshot

TIMEOUT_REASON = "timeout"
QUEUE_TIMEOUT_REASON = "queue timeout"


class RunStatus(enum.StrEnum):
    WAITING = "waiting"  # for its devices: it holds none and has no job yet
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.ABORTED)


class RunPurpose(enum.StrEnum):
    """Why the run exists. A health check is started by the worker to judge a device, not
    the firmware: it goes ahead of normal work on its device and stays out of pass rates,
    trends and comparisons."""

    NORMAL = "normal"
    HEALTH_CHECK = "health_check"


class Verdict(enum.StrEnum):
    """A case's or a run's verdict. Marginal is a pass with a warning: some criterion passed
    inside its marginal band. Overall, fail wins over inconclusive, inconclusive over
    marginal, marginal over pass (`VERDICT_ORDER`)."""

    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    @property
    def passed(self) -> bool:
        """Pass or marginal: what pass rates, exit codes and regressions count as passed."""
        return self in (Verdict.PASS, Verdict.MARGINAL)


# the worst first: the first of these among a run's cases is the run's verdict
VERDICT_ORDER = (Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.MARGINAL, Verdict.PASS)


@dataclass(frozen=True)
class DeviceSnapshot:
    """The device as it was when the run started (firmware matters for history)."""

    id: str
    name: str
    model: str = ""
    serial: str = ""
    firmware_version: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    role: str | None = None  # the role of the request it fills; None for a named device


@dataclass(frozen=True)
class Observation:
    """What a runner measured for one metric: a value, a series of `samples` (`(t, value)`,
    `t` in seconds from the case's start, in time order), or both. Without a value the last
    sample's is the final value."""

    metric: str
    value: float | None = None
    unit: str = ""
    samples: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        samples = tuple(tuple(s) for s in self.samples or ())
        last_t = -math.inf
        for sample in samples:
            if len(sample) != 2 or not all(_finite(x) for x in sample):
                raise InvalidValue(
                    "results", f"each sample of {self.metric} must be [t, value], two numbers"
                )
            if sample[0] < 0 or sample[0] < last_t:
                raise InvalidValue(
                    "results",
                    f"the samples of {self.metric} must be in time order, t >= 0 seconds",
                )
            last_t = sample[0]
        object.__setattr__(self, "samples", tuple((float(t), float(v)) for t, v in samples))
        if self.value is None:
            if not samples:
                raise InvalidValue("results", f"{self.metric} needs a value or samples")
            object.__setattr__(self, "value", float(samples[-1][1]))
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise InvalidValue("results", f"the value of {self.metric} must be a number")
        if not math.isfinite(self.value):
            raise InvalidValue("results", f"the value of {self.metric} must be a finite number")


def _finite(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, int | float) and math.isfinite(x)


@dataclass(frozen=True)
class ResultReport:
    """What a runner reports for one (test case, device) pair."""

    test_case_id: str
    device_id: str
    observations: tuple[Observation, ...] = ()
    message: str = ""
    error: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class Measurement:
    """One criterion judged against what was measured; `value` is None when nothing was.
    `passed` is True for a pass and a marginal pass (`marginal` then True), None when the
    outcome is inconclusive (`reason` says why). `value` is what was judged: the final value,
    the statistic `of` the samples, or for `all` the first failing (else first marginal)
    sample. `expected` is what the criterion asks of the value (`<= 240 V`); `samples` are the series measured."""

    metric: str
    condition: str
    threshold: float | None
    unit: str
    value: float | None
    passed: bool | None
    marginal: bool = False
    reason: str = ""
    of: str = Statistic.FINAL.value
    expected: str = ""
    samples: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not self.expected and self.threshold is not None:  # stored before `expected`
            unit = f" {self.unit}" if self.unit else ""
            expected = f"{self.condition} {self.threshold:g}{unit}"
            object.__setattr__(self, "expected", expected)

    @property
    def outcome(self) -> Outcome:
        if self.passed is None:
            return Outcome.INCONCLUSIVE
        if not self.passed:
            return Outcome.FAIL
        return Outcome.MARGINAL if self.marginal else Outcome.PASS


@dataclass(frozen=True)
class CaseResult:
    test_case_id: str
    device_id: str
    verdict: Verdict
    measurements: tuple[Measurement, ...]
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


def judge(criterion: Criterion, observations: Iterable[Observation]) -> Measurement:
    """The criterion against the last observation of its metric. Inconclusive, with the
    reason, when the metric was not reported or came in another unit than the criterion's
    (when both name one)."""
    observed: Observation | None = None
    for observation in observations:
        if observation.metric == criterion.metric:
            observed = observation  # the last report of a metric wins
    judged = Measurement(
        metric=criterion.metric,
        condition=criterion.condition.value,
        threshold=criterion.threshold,
        unit=criterion.unit,
        value=None,
        passed=None,
        of=criterion.of.value,
        expected=criterion.expectation(),
    )
    if observed is None:
        return replace(judged, reason=f"no value reported for {criterion.metric}")
    judged = replace(judged, samples=observed.samples)
    if criterion.unit and observed.unit and observed.unit != criterion.unit:
        return replace(
            judged,
            value=observed.value,
            reason=f"unit {observed.unit} differs from criterion unit {criterion.unit}",
        )
    value, outcome = _judged_value(criterion, observed)
    return replace(
        judged,
        value=value,
        passed=outcome is not Outcome.FAIL,
        marginal=outcome is Outcome.MARGINAL,
    )


def _judged_value(criterion: Criterion, observed: Observation) -> tuple[float, Outcome]:
    """Without samples the reported value is the series (of one)."""
    series = [v for _, v in observed.samples] or [observed.value]
    final: float = observed.value  # type: ignore[assignment]  # Observation sets it
    of = criterion.of
    if of is Statistic.ALL:
        outcomes = [(v, criterion.outcome_of(v)) for v in series]
        for worst in (Outcome.FAIL, Outcome.MARGINAL):
            first = next((v for v, o in outcomes if o is worst), None)
            if first is not None:
                return first, worst
        return final, Outcome.PASS
    value = {
        Statistic.FINAL: lambda: final,
        Statistic.P95: lambda: percentile(series, 95),
        Statistic.MEAN: lambda: math.fsum(series) / len(series),
        Statistic.MAX: lambda: max(series),
        Statistic.MIN: lambda: min(series),
    }[of]()
    return value, criterion.outcome_of(value)


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest rank: the smallest value with at least `percent` % of the values at or below."""
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def verdict_of(measurements: Iterable[Measurement], error: bool = False) -> Verdict:
    """Any failed criterion fails; anything unmeasured or inconclusive (or a runner error) is
    inconclusive; a marginal criterion makes a pass marginal."""
    outcomes = [m.outcome for m in measurements]
    if Outcome.FAIL in outcomes:
        return Verdict.FAIL
    if error or Outcome.INCONCLUSIVE in outcomes or not outcomes:
        return Verdict.INCONCLUSIVE
    if Outcome.MARGINAL in outcomes:
        return Verdict.MARGINAL
    return Verdict.PASS


def overall_verdict(verdicts: Iterable[Verdict]) -> Verdict:
    """The worst of the verdicts in VERDICT_ORDER; no verdicts are inconclusive."""
    present = set(verdicts)
    if not present:
        return Verdict.INCONCLUSIVE
    return next(v for v in VERDICT_ORDER if v in present)


@dataclass(eq=False)
class TestRun:
    __test__ = False

    id: str
    test_cases: tuple[TestCaseSnapshot, ...]
    environment: EnvironmentSnapshot
    devices: tuple[DeviceSnapshot, ...]
    started_by: str
    created_at: datetime
    deadline: datetime
    parameters: dict[str, Any] = field(default_factory=dict)
    status: RunStatus = RunStatus.QUEUED
    verdict: Verdict | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failure_reason: str = ""
    progress: float = 0.0
    progress_message: str = ""
    last_report_at: datetime | None = None
    runner: str = ""  # which runner executes the run (as it said when it started)
    # how often, and when last, devicelab offered the job again because its claimant fell
    # silent (a transport that lost the dead runner's message never redelivers it)
    reoffers: int = 0
    reoffered_at: datetime | None = None
    results: dict[tuple[str, str], CaseResult] = field(default_factory=dict)
    version: int = 0
    # what the run asked for: devices by id and by kind, how urgent, and how long it may wait
    priority: Priority = Priority.NORMAL
    requested_device_ids: tuple[str, ...] = ()
    device_requests: tuple[DeviceRequest, ...] = ()
    queue_timeout_at: datetime | None = None
    # while waiting: when the worker last estimated it will get its devices (None: cannot
    # be told, or not estimated yet). Not part of the run's state: writing it bumps no version
    estimated_start_at: datetime | None = None
    purpose: RunPurpose = RunPurpose.NORMAL

    @classmethod
    def create(
        cls,
        *,
        id: str,
        test_cases: Iterable[TestCaseSnapshot],
        environment: EnvironmentSnapshot,
        devices: Iterable[DeviceSnapshot],
        started_by: str,
        at: datetime,
        queue_allowance_s: float,
        parameters: dict[str, Any] | None = None,
    ) -> TestRun:
        cases = tuple(test_cases)
        devs = tuple(devices)
        if not cases:
            raise InvalidValue("test_case_ids", "a run needs at least one test case")
        if len({c.id for c in cases}) != len(cases):
            raise InvalidValue("test_case_ids", "each test case may appear only once")
        if not devs:
            raise InvalidValue("device_ids", "a run needs at least one device")
        if len({d.id for d in devs}) != len(devs):
            raise InvalidValue("device_ids", "each device may appear only once")
        timeout = sum(c.timeout_s for c in cases)
        return cls(
            id=id,
            test_cases=cases,
            environment=environment,
            devices=devs,
            started_by=started_by,
            created_at=at,
            deadline=at + timedelta(seconds=queue_allowance_s + timeout),
            parameters=dict(parameters or {}),
        )

    @classmethod
    def submit(
        cls,
        *,
        id: str,
        test_cases: Iterable[TestCaseSnapshot],
        environment: EnvironmentSnapshot,
        device_ids: Iterable[str] = (),
        device_requests: Iterable[DeviceRequest] = (),
        started_by: str,
        at: datetime,
        queue_allowance_s: float,
        queue_timeout_s: float,
        priority: Priority | str = Priority.NORMAL,
        parameters: dict[str, Any] | None = None,
        purpose: RunPurpose = RunPurpose.NORMAL,
    ) -> TestRun:
        """A run that waits for its devices: it holds none until the scheduler assigns
        them all at once (`assign`). Its deadline counts from then."""
        cases = tuple(test_cases)
        if not cases:
            raise InvalidValue("test_case_ids", "a run needs at least one test case")
        if len({c.id for c in cases}) != len(cases):
            raise InvalidValue("test_case_ids", "each test case may appear only once")
        demand = Demand(tuple(device_ids), tuple(device_requests))
        if isinstance(queue_timeout_s, bool) or not (
            isinstance(queue_timeout_s, int | float) and math.isfinite(queue_timeout_s)
        ):
            raise InvalidValue("queue_timeout_s", "must be a number of seconds")
        if queue_timeout_s <= 0:
            raise InvalidValue("queue_timeout_s", "must be more than 0 seconds")
        try:
            priority = Priority(priority)
        except ValueError:
            raise InvalidValue("priority", "must be low, normal or high") from None
        timeout = sum(c.timeout_s for c in cases)
        return cls(
            id=id,
            test_cases=cases,
            environment=environment,
            devices=(),
            started_by=started_by,
            created_at=at,
            deadline=at + timedelta(seconds=queue_allowance_s + timeout),
            parameters=dict(parameters or {}),
            status=RunStatus.WAITING,
            priority=priority,
            requested_device_ids=demand.device_ids,
            device_requests=demand.requests,
            queue_timeout_at=at + timedelta(seconds=queue_timeout_s),
            purpose=RunPurpose(purpose),
        )

    # -- what the run is ---------------------------------------------------------------

    @property
    def demand(self) -> Demand:
        """The devices the run asks for, as the scheduler reads them. A run started before
        runs could wait asked for exactly the devices it has."""
        if self.requested_device_ids or self.device_requests:
            return Demand(self.requested_device_ids, self.device_requests)
        return Demand(self.device_ids)

    @property
    def is_health_check(self) -> bool:
        return self.purpose is RunPurpose.HEALTH_CHECK

    @property
    def waiting(self) -> bool:
        return self.status is RunStatus.WAITING

    @property
    def device_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.devices)

    @property
    def holds_devices(self) -> bool:
        """A run holds its devices exactly while it is booked and has not finished."""
        return not self.status.finished and not self.waiting

    @property
    def timeout_s(self) -> int:
        return sum(c.timeout_s for c in self.test_cases)

    @property
    def expected_pairs(self) -> list[tuple[str, str]]:
        return [(c.id, d.id) for c in self.test_cases for d in self.devices]

    def is_overdue(self, now: datetime) -> bool:
        """Past its deadline while booked; a waiting run has its queue timeout instead."""
        return self.holds_devices and now > self.deadline

    def timed_out_in_queue(self, now: datetime) -> bool:
        return self.waiting and self.queue_timeout_at is not None and self.queue_timeout_at <= now

    def claimant_fell_silent(self, now: datetime, silent_for_s: float, max_reoffers: int) -> bool:
        """The run is claimed by a runner of which nothing was heard for longer than
        `silent_for_s`, counting the last re-offer as news, and may be offered again (fewer
        than `max_reoffers` so far). A run nobody claims (given back, or started by a runner
        that does not name itself) is not: its job is already back in the queue, or devicelab
        cannot tell whose silence it is."""
        if self.status is not RunStatus.RUNNING or not self.runner:
            return False
        if self.reoffers >= max_reoffers:
            return False
        heard = [t for t in (self.started_at, self.last_report_at, self.reoffered_at) if t]
        return bool(heard) and (now - max(heard)).total_seconds() > silent_for_s

    # -- transitions ---------------------------------------------------------------------

    def _refuse_if_finished(self, what: str) -> None:
        if self.status.finished:
            raise RunAlreadyFinished(
                f"run {self.id} is already {self.status.value}; {what} refused"
            )
        if self.waiting:
            # no job was sent for it: no runner can have it
            raise InvalidTransition(f"run {self.id} is waiting for its devices; {what} refused")

    def assign(self, devices: Iterable[DeviceSnapshot], at: datetime) -> None:
        """The scheduler booked every device the run asked for (each snapshot with the role
        it fills): the run is queued for a runner, as a run started on free devices is. The
        queue allowance and timeouts count from now, not from when it was submitted."""
        if not self.waiting:
            raise InvalidTransition(f"run {self.id} is {self.status.value}, not waiting")
        devs = tuple(devices)
        if not devs or len({d.id for d in devs}) != len(devs):
            raise InvalidValue("device_ids", "each device may appear only once")
        if len(devs) != self.demand.places:
            raise InvalidValue(
                "device_ids", f"run {self.id} asked for {self.demand.places} devices"
            )
        missing = [i for i in self.requested_device_ids if i not in {d.id for d in devs}]
        if missing:
            raise InvalidValue("device_ids", f"named device(s) not assigned: {missing}")
        self.devices = devs
        self.deadline = self.deadline + (at - self.created_at)
        self.status = RunStatus.QUEUED
        self.estimated_start_at = None

    def expire_in_queue(self, now: datetime) -> bool:
        """A run that waited past its queue timeout ends aborted ("queue timeout")."""
        if not self.timed_out_in_queue(now):
            return False
        self.failure_reason = QUEUE_TIMEOUT_REASON
        self._finish(RunStatus.ABORTED, now)
        return True

    def start(self, at: datetime, runner: str = "", takeover_after_s: float | None = None) -> bool:
        """A runner picked the job up. A repeat by the same runner is accepted and changes
        nothing (it is the same runner asking again, or the same runner restarted under its
        stable id: either way it executes the run). Another runner may only take the run over
        once the claimant has been silent for longer than `takeover_after_s`, the claim lease
        (it crashed and the broker redelivered its job); until then it gets RunClaimed, which
        says when the claim lapses. Without a lease the claim never lapses by silence."""
        self._refuse_if_finished("start report")
        if self.status is RunStatus.RUNNING:
            if not runner or runner == self.runner:
                return False
            if self.runner:
                last_heard = self.last_report_at or self.started_at or at
                silent_s = (at - last_heard).total_seconds()
                if takeover_after_s is None:
                    raise RunClaimed(self.id, self.runner, None)
                if silent_s <= takeover_after_s:
                    raise RunClaimed(self.id, self.runner, takeover_after_s - silent_s)
            # unclaimed (given back by a stopping runner), or its runner fell silent: the new
            # runner executes the run afresh and gets the full timeout for it
            self.runner = runner
            self.last_report_at = at
            self.deadline = max(self.deadline, at + timedelta(seconds=self.timeout_s))
            return True
        self.status = RunStatus.RUNNING
        self.started_at = at
        self.last_report_at = at
        self.runner = runner
        # the queue allowance is spent: from now on the run has its test cases' timeouts
        self.deadline = at + timedelta(seconds=self.timeout_s)
        return True

    def offer_again(self, at: datetime, silent_for_s: float, max_reoffers: int) -> bool:
        """The claimant fell silent (see claimant_fell_silent): its job is to be offered again.
        The claim stays: the next runner's `started` takes the run over anyway (the claimant
        has been silent for longer than the claim lease), and a claimant that was only frozen
        and reports again keeps its run."""
        if not self.claimant_fell_silent(at, silent_for_s, max_reoffers):
            return False
        self.reoffers += 1
        self.reoffered_at = at
        self.progress_message = f"job offered again after runner {self.runner} fell silent"
        return True

    def give_back(self, at: datetime, runner: str) -> bool:
        """A stopping runner hands the run back before requeueing its job, so the next
        runner may claim it at once. Only the runner that holds the claim can give it back."""
        self._refuse_if_finished("give-back")
        if self.status is not RunStatus.RUNNING or not runner or self.runner != runner:
            return False
        self.runner = ""
        self.last_report_at = at
        self.progress_message = f"given back by runner {runner}"
        return True

    def record_progress(
        self,
        at: datetime,
        progress: float,
        message: str = "",
        partial_results: Iterable[ResultReport] = (),
        lease_s: float = 0,
        runner: str = "",
    ) -> bool:
        """A heartbeat from the runner, with optional partial results; extends the lease and
        renews the runner's claim. Always a change worth keeping: even a repeat renews them.
        A runner that names itself and is not the claimant lost the run to another runner
        (it was silent past the claim lease): RunClaimed tells it to stop."""
        self._refuse_if_finished("progress report")
        if runner and self.runner and runner != self.runner:
            raise RunClaimed(self.id, self.runner, None)
        if isinstance(progress, bool) or not (
            isinstance(progress, int | float) and math.isfinite(progress)
        ):
            raise InvalidValue("progress", "must be a number between 0 and 1")
        if not 0 <= progress <= 1:
            raise InvalidValue("progress", "must be between 0 and 1")
        new_results = self._evaluate(partial_results)
        if self.status is RunStatus.QUEUED:
            self.start(at, runner)
        self.results.update(new_results)
        self.progress = float(progress)
        self.progress_message = message
        self.last_report_at = at
        if lease_s > 0:
            self.deadline = max(self.deadline, at + timedelta(seconds=lease_s))
        return True

    def complete(self, at: datetime, reports: Iterable[ResultReport]) -> bool:
        """Final results: computes the verdict. A repeat of the accepted report changes
        nothing; a different report after completion is a conflict."""
        if self.status in (RunStatus.FAILED, RunStatus.ABORTED) or self.waiting:
            self._refuse_if_finished("result report")
        results = self._evaluate(reports, complete=True)
        if self.status is RunStatus.COMPLETED:
            if results == self.results:
                return False
            raise ConflictingReport(f"run {self.id} already completed with different results")
        if self.status is RunStatus.QUEUED:
            self.start(at)
        self.results = results
        self.verdict = overall_verdict(result.verdict for result in results.values())
        self._finish(RunStatus.COMPLETED, at)
        self.progress = 1.0
        return True

    def fail(self, at: datetime, reason: str) -> bool:
        reason = (reason or "").strip() or "runner error"
        if self.status is RunStatus.FAILED and self.failure_reason == reason:
            return False
        self._refuse_if_finished("failure report")
        self.failure_reason = reason
        self._finish(RunStatus.FAILED, at)
        return True

    def abort(self, at: datetime, by: str, reason: str = "") -> bool:
        if self.status is RunStatus.ABORTED:
            return False
        if self.status.finished:
            raise InvalidTransition(f"run {self.id} is already {self.status.value}")
        self.failure_reason = (reason or "").strip() or f"cancelled by {by}"
        self._finish(RunStatus.ABORTED, at)
        return True

    def expire(self, at: datetime) -> bool:
        """Fail the run with reason "timeout" if its deadline passed; otherwise do nothing."""
        if not self.is_overdue(at):
            return False
        return self.fail(at, TIMEOUT_REASON)

    def _finish(self, status: RunStatus, at: datetime) -> None:
        self.status = status
        self.estimated_start_at = None
        self.finished_at = at
        self.last_report_at = at

    def _evaluate(
        self, reports: Iterable[ResultReport], complete: bool = False
    ) -> dict[tuple[str, str], CaseResult]:
        cases = {c.id: c for c in self.test_cases}
        devices = set(self.device_ids)
        results: dict[tuple[str, str], CaseResult] = {}
        for report in reports:
            case = cases.get(report.test_case_id)
            if case is None:
                raise InvalidValue("results", f"test case {report.test_case_id} is not in this run")
            if report.device_id not in devices:
                raise InvalidValue("results", f"device {report.device_id} is not in this run")
            key = (report.test_case_id, report.device_id)
            if key in results:
                raise InvalidValue(
                    "results",
                    f"more than one result for test case {key[0]} on device {key[1]}",
                )
            measurements = tuple(judge(c, report.observations) for c in case.criteria)
            results[key] = CaseResult(
                test_case_id=report.test_case_id,
                device_id=report.device_id,
                verdict=verdict_of(measurements, report.error),
                measurements=measurements,
                message=report.message,
                started_at=report.started_at,
                finished_at=report.finished_at,
            )
        if complete:
            missing = [pair for pair in self.expected_pairs if pair not in results]
            for case_id, device_id in missing:
                results[(case_id, device_id)] = CaseResult(
                    test_case_id=case_id,
                    device_id=device_id,
                    verdict=Verdict.INCONCLUSIVE,
                    measurements=tuple(judge(c, ()) for c in cases[case_id].criteria),
                    message="no result reported",
                )
        return results
