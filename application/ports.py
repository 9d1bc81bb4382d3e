"""The ports the use cases need. Adapters implement them; an in-memory twin exists for each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Self

from domain.comparison import Summary
from domain.devices import Device, DeviceStatus, StatusChange
from domain.environments import Environment
from domain.holds import Hold, HoldStatus
from domain.runners import Runner
from domain.scheduling import Signature
from domain.test_cases import TestCase
from domain.test_runs import RunPurpose, RunStatus, TestRun, Verdict
from domain.trends import TrendResult
from domain.utilisation import Timeline

if TYPE_CHECKING:  # the webhook and plan ports import nothing from here
    from application.plan_ports import FirmwareSightings, PlanRepository, PlanRunRepository
if TYPE_CHECKING:  # the webhook and health-check ports import nothing from here
    from application.health_ports import HealthCheckRepository
if TYPE_CHECKING:  # the webhook, log and artifact ports import nothing from here
    from application.run_log_ports import ArtifactRepository, RunLogRepository
    from application.webhook_ports import WebhookRepository

# Keyset pagination: every list is ordered by a key, and `after` is the key of the last item
# of the previous page. The keys are:
#   devices, test cases, environments: (name, id) ascending
#   test runs, holds: (created_at ISO string, id) descending — newest first


@dataclass(frozen=True)
class DeviceFilter:
    status: DeviceStatus | None = None
    text: str | None = None  # substring of name, serial, model, location or firmware
    label: tuple[str, str | None] | None = None  # key, and value (None: any value)
    # retired devices are left out unless asked for by status or with this
    include_retired: bool = False

    def shows(self, status: DeviceStatus) -> bool:
        if self.status is not None:
            return status is self.status
        return self.include_retired or status is not DeviceStatus.RETIRED


@dataclass(frozen=True)
class NameFilter:
    text: str | None = None
    tag: str | None = None  # test cases only


@dataclass(frozen=True)
class RunFilter:
    status: RunStatus | None = None
    verdict: Verdict | None = None
    purpose: RunPurpose | None = None
    device_id: str | None = None
    environment_id: str | None = None
    test_case_id: str | None = None
    firmware: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    runner: str | None = None  # runs claimed by this runner


@dataclass(frozen=True)
class HoldFilter:
    status: HoldStatus | None = None
    holder: str | None = None
    device_id: str | None = None  # holds that have or had this device


@dataclass(frozen=True)
class OutboxMessage:
    """A message to the runners, written in the same transaction as the change it announces."""

    id: str
    kind: str  # "test_run.job" | "test_run.cancel" | "runner.drain"
    run_id: str  # "" for a message about a runner
    payload: dict[str, Any]
    created_at: datetime


class DeviceRepository(Protocol):
    def add(self, device: Device) -> None: ...
    def update(self, device: Device) -> None: ...
    def remove(self, device: Device) -> None: ...
    def get(self, device_id: str) -> Device | None: ...
    def get_by_name(self, name: str) -> Device | None: ...
    def get_many_for_update(self, device_ids: Sequence[str]) -> list[Device]:
        """Load the devices and lock them until the transaction ends (in id order)."""
        ...

    def list(self, where: DeviceFilter, limit: int, after: tuple | None) -> list[Device]: ...
    def list_relevant(
        self, device_ids: Sequence[str], signatures: Sequence[Signature]
    ) -> list[Device]:
        """Every device, retired ones too, that is named in `device_ids` or matches one of
        `signatures` (its model, if the signature has one, and each of its labels), in name
        order: the devices a scheduling pass over those demands can see at all."""
        ...

    def list_silent(self, seen_before: datetime, limit: int) -> list[Device]:
        """Devices not marked offline whose last heartbeat is older than `seen_before`."""
        ...

    def history(self, device_id: str, limit: int) -> list[StatusChange]:
        """Newest first."""
        ...


class TestCaseRepository(Protocol):
    def add(self, test_case: TestCase) -> None: ...
    def update(self, test_case: TestCase) -> None: ...
    def remove(self, test_case: TestCase) -> None: ...
    def get(self, test_case_id: str) -> TestCase | None: ...
    def get_by_name(self, name: str) -> TestCase | None: ...
    def list(self, where: NameFilter, limit: int, after: tuple | None) -> list[TestCase]: ...


class EnvironmentRepository(Protocol):
    def add(self, environment: Environment) -> None: ...
    def update(self, environment: Environment) -> None: ...
    def remove(self, environment: Environment) -> None: ...
    def get(self, environment_id: str) -> Environment | None: ...
    def get_by_name(self, name: str) -> Environment | None: ...
    def list(self, where: NameFilter, limit: int, after: tuple | None) -> list[Environment]: ...


class TestRunRepository(Protocol):
    def add(self, run: TestRun) -> None: ...
    def update(self, run: TestRun) -> None:
        """Persist changes; raises ConcurrentUpdate if the run changed since it was loaded."""
        ...

    def get(self, run_id: str, for_update: bool = False) -> TestRun | None: ...
    def list(self, where: RunFilter, limit: int, after: tuple | None) -> list[TestRun]: ...
    def list_overdue(self, now: datetime, limit: int) -> list[str]:
        """Ids of booked, unfinished runs whose deadline is before `now`."""
        ...

    def list_waiting(self) -> list[TestRun]:
        """The waiting runs in queue order: higher priority first, then oldest first."""
        ...

    def lock_queue(self) -> None:
        """Serialise scheduling passes until this transaction ends (a second pass, in any
        process, waits here). Taken before any device row is locked."""
        ...

    def list_booked(self) -> list[TestRun]:
        """The runs that hold devices now (queued or running)."""
        ...

    def measured_case_durations(self, case_ids: Sequence[str], last: int) -> dict[str, list[float]]:
        """Per test case: how long it took, in seconds, in each of the last `last` completed
        runs containing it (newest first), from its results' start and finish times (first
        start to last finish over the run's devices). Cases never measured are absent."""
        ...

    def set_estimated_starts(self, estimates: Mapping[str, datetime | None]) -> None:
        """Store the estimated start of each run that is still waiting (others are left
        alone), without a version change: an estimate never makes a concurrent change of
        the run fail. Notes a queue change."""
        ...

    def list_silent_claims(
        self, heard_before: datetime, max_reoffers: int, limit: int
    ) -> list[str]:
        """Ids of running runs claimed by a runner, offered again fewer than `max_reoffers`
        times, of which nothing was heard (no report, no re-offer) since `heard_before`;
        the longest silent first (TestRun.claimant_fell_silent)."""
        ...


class HoldRepository(Protocol):
    def add(self, hold: Hold) -> None: ...
    def update(self, hold: Hold) -> None:
        """Persist changes; raises ConcurrentUpdate if the hold changed since it was loaded."""
        ...

    def get(self, hold_id: str, for_update: bool = False) -> Hold | None: ...
    def list(self, where: HoldFilter, limit: int, after: tuple | None) -> list[Hold]: ...
    def list_waiting(self) -> list[Hold]:
        """The waiting holds in queue order: higher priority first, then oldest first."""
        ...

    def list_expired(self, now: datetime, limit: int) -> list[str]:
        """Ids of active holds whose expiry is not after `now`, the earliest first."""
        ...

    def list_active(self) -> list[Hold]:
        """The holds that keep devices now."""
        ...

    def set_estimated_starts(self, estimates: Mapping[str, datetime | None]) -> None:
        """As for runs: store the estimates of holds still waiting, without a version
        change; notes a queue change."""
        ...


class RunnerRepository(Protocol):
    """The runner registry (domain.runners)."""

    def get(self, runner_id: str, for_update: bool = False) -> Runner | None: ...
    def add(self, runner: Runner) -> None:
        """Raises ConcurrentUpdate when the id was registered meanwhile (its first two
        reports raced)."""
        ...

    def update(self, runner: Runner, announce: bool = True) -> None:
        """Persist changes; `announce=False` for a change nobody watches for (only its last
        seen time moved): no change-log entry for every heartbeat."""
        ...

    def list(self, limit: int) -> list[Runner]:
        """By id."""
        ...

    def current_runs(self, runner_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
        """Per runner (of `runner_ids`, or all): the ids of the running runs it claims,
        oldest first. Runners without one are absent."""
        ...


class Outbox(Protocol):
    def add(self, message: OutboxMessage) -> None: ...

    def claim(self, now: datetime, until: datetime, limit: int) -> list[OutboxMessage]:
        """Unsent messages not claimed by another relay (or whose claim ran out before `now`),
        oldest first; marks them claimed until `until`, so concurrent relays skip them."""
        ...

    def mark_sent(self, sent: Sequence[tuple[str, datetime]]) -> None:
        """The broker confirmed these messages: (message id, when), all in one go."""
        ...

    def release_claim(self, message_id: str) -> None:
        """Publishing failed: count the attempt and let the message be claimed again."""
        ...

    def purge_sent(self, before: datetime) -> int: ...


QUEUE_CHANGE = "queue"  # the kind and entity id of a change of the queue as a whole


@dataclass(frozen=True)
class Change:
    """A device, test run or hold changed (kind "device" / "run" / "hold"; `deleted` for
    removals; also "test_case" / "environment", which only move the lists' version), or the
    queue did (kind "queue", entity "queue": an item entered or left it, or
    its estimated starts moved)."""

    id: int
    kind: str
    entity_id: str
    at: datetime
    deleted: bool = False


class ChangeFeed(Protocol):
    """An ordered log of changes, written in the transaction that made them."""

    def since(self, after_id: int, limit: int) -> list[Change]: ...
    def latest_id(self) -> int: ...
    def purge(self, before: datetime) -> int: ...

    def position(self) -> str:
        """Where the log stands, as text that differs after any committed change: the
        latest id, and how many ids are in the window a reader looks back over (see
        ChangeCursor), so that a change committed late below the latest id moves it too."""
        ...


class ChangeSignal(Protocol):
    """Wakes a process's one reader of the change feed when a change may have been written:
    on PostgreSQL a NOTIFY sent in the transaction that wrote it, elsewhere a short poll. A
    wake-up without a change is harmless (the reader finds nothing new)."""

    def wait(self, timeout_s: float) -> None:
        """Return after a change was signalled, or after `timeout_s` at the latest."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class StreamLease:
    """One open live stream of a user: it holds one of the user's numbered slots until it ends
    or stops renewing the lease (`expires_at`), so a stream whose process died frees its
    slot by itself."""

    id: str
    user_id: str
    slot: int
    expires_at: datetime


class StreamLeases(Protocol):
    """The open live streams, shared by every API process of one instance."""

    def of_user(self, user_id: str) -> list[StreamLease]: ...
    def add(self, lease: StreamLease) -> None:
        """Raises ConcurrentUpdate when the user's slot is already held (a stream in another
        process took it since it was seen free)."""
        ...

    def renew_all(self, lease_ids: list[str], expires_at: datetime) -> set[str]:
        """Move the expiry of these leases, in one statement however many; the ids of those
        renewed (a lease that is gone is not among them)."""
        ...

    def remove(self, lease_id: str) -> None: ...
    def remove_expired(self, now: datetime) -> int: ...


@dataclass(frozen=True)
class LabStatistics:
    devices_by_status: dict[str, int]
    runs_by_status: dict[str, int]
    verdicts_by_day: list[tuple[str, str, int]]  # (YYYY-MM-DD, verdict, count)
    most_failing_test_cases: list[tuple[str, str, int, int]]  # (id, name, failures, runs)
    days: list[str] = field(default_factory=list)  # every day of the period, oldest first
    waiting: int = 0  # runs in the queue
    oldest_waiting_since: datetime | None = None  # when the longest-waiting one was submitted
    longest_wait_s: float | None = None  # how long it has waited (set by the use case)


class StatisticsQueries(Protocol):
    def lab_statistics(self, since: datetime, top: int) -> LabStatistics:
        """Counts now, verdicts of runs finished since `since` per UTC day, and the test
        cases with the most failed results since `since`."""
        ...


@dataclass(frozen=True)
class ResultScope:
    """Which stored results one side of a comparison takes: those of completed runs on devices
    with `firmware` (or of the one run `run_id`), narrowed by the rest."""

    firmware: str | None = None
    run_id: str | None = None
    model: str | None = None
    environment_id: str | None = None
    test_case_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True)
class FirmwareSeen:
    version: str
    first_seen: datetime  # when the first result on it came (its run finished)
    results: int


class ResultSummaries(Protocol):
    """Results of completed runs summarised per test case x model x environment
    (domain.comparison.Summary)."""

    def record_completed(self, run: TestRun) -> None:
        """Count the results of a run that has just completed (in its transaction)."""
        ...

    def summaries(self, scope: ResultScope, by_firmware: bool = False) -> list[Summary]:
        """One summary per key (per key and firmware version with `by_firmware`)."""
        ...

    def firmware_versions(self) -> list[FirmwareSeen]:
        """The firmware versions with results: since when (the oldest result) and how many."""
        ...


@dataclass(frozen=True)
class TrendScope:
    """The results of one test case that a trend takes: of completed runs finished in the
    window, on `model` or the one device, at most the newest `limit`."""

    test_case_id: str
    limit: int
    model: str | None = None
    device_id: str | None = None
    finished_from: datetime | None = None
    finished_to: datetime | None = None


class ResultTrends(Protocol):
    def results(self, scope: TrendScope) -> list[TrendResult]:
        """The newest results in scope, newest first."""
        ...


class StatusTimelines(Protocol):
    def timelines(self, start: datetime, end: datetime) -> list[Timeline]:
        """Every device's status from `start` (or its creation) with its changes before `end`."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Leaving the `with` block without `commit()` rolls back."""

    devices: DeviceRepository
    test_cases: TestCaseRepository
    environments: EnvironmentRepository
    test_runs: TestRunRepository
    holds: HoldRepository
    outbox: Outbox
    changes: ChangeFeed
    statistics: StatisticsQueries
    results: ResultSummaries
    trends: ResultTrends
    utilisation: StatusTimelines
    stream_leases: StreamLeases
    webhooks: WebhookRepository
    plans: PlanRepository
    plan_runs: PlanRunRepository
    firmware_sightings: FirmwareSightings
    health_checks: HealthCheckRepository
    runners: RunnerRepository
    run_logs: RunLogRepository
    artifacts: ArtifactRepository

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def commit(self) -> None:
        """Make the changes durable. Refused (RuntimeError) in a read-only unit of work."""
        ...

    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work. `read_only=True` promises that nothing will be written and lets
        the store skip what only writers need: on PostgreSQL each statement runs on its own
        (no BEGIN and ROLLBACK round trips, so statements do not share one snapshot), on
        SQLite the read does not take the write lock. Use it where one query answers."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> str: ...


class RunCredentials(Protocol):
    """Per-run credentials for runner callbacks, scoped to one run and expiring."""

    def issue(self, run_id: str, expires_at: datetime) -> str: ...

    def verify(self, token: str, now: datetime) -> str:
        """The run id the token was issued for; raises InvalidRunCredential."""
        ...


class MessagePublisher(Protocol):
    """Hands a message to the broker; returns only once the broker has confirmed it."""

    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        """Raises PublishFailed when the broker did not take the message."""
        ...
