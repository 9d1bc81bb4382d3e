"""Estimated starts of the waiting items, and the queue as the live stream shows it.

The worker estimates after each of its scheduling passes (`EstimateQueue`), never an HTTP
request: playing the queue forward costs milliseconds on a lab of hundreds of devices but
seconds on one of thousands (docs/scheduling.md has the figures). How:

- Busy devices free up when the booked run that has them is expected to end
  (`domain.run_durations.expected_free_at`: the remaining cases' expected durations, a run
  past its time "soon", none later than its deadline).
- Each waiting item keeps its devices, once started, for its expected duration (the same
  per-case figures: measured when there is enough history, declared otherwise).
- `domain.scheduling.estimate_starts` plays the queue forward with the real scheduler. Only
  the first `limit` items of the queue are estimated, the rest get None: no item is affected
  by the ones behind it (they never take a device an item ahead could use), so cutting the
  queue short changes none of the estimates kept.

An estimate is written only when it moved by more than `threshold_s` (or became known or
unknown), so that the clock going on does not flood the change feed: one UPDATE per changed
run without a version bump (`set_estimated_starts`), under the queue lock so that it never
interleaves with a pass's row locks. Items that wait for something whose end is not known (a
device in maintenance or offline, a busy device no booked run has) have no estimate.

Holds are in the same queue: a waiting hold keeps its devices for its `duration_s` once it
starts, and an active hold's devices free up at its `expires_at`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from application.ports import Clock, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from application.use_cases.scheduling import all_devices
from domain.devices import Device
from domain.holds import Hold
from domain.queueing import device_view, hold_item, waiting_item
from domain.run_durations import MEASURED_RUNS, Measured, expected_duration_s, expected_free_at
from domain.scheduling import DeviceView, WaitingItem, estimate_starts, queue_positions
from domain.test_runs import TestRun

THRESHOLD_S = 30.0  # an estimate that moved less is not written again
DEFAULT_LIMIT = 100  # items estimated from the head of the queue; the rest have none
HISTORY_TTL_S = 600.0  # measured durations are read again after this long

__all__ = [
    "EstimateOutcome",
    "EstimateQueue",
    "QueueItem",
    "QueueSummary",
    "estimate_waiting",
    "queue_now",
    "summarise_queue",
]


@dataclass(frozen=True)
class QueueItem:
    kind: str  # "run" | "hold"
    id: str
    position: int
    estimated_start_at: datetime | None


@dataclass(frozen=True)
class QueueSummary:
    """The queue in order: what the live stream's `queue` event carries."""

    items: tuple[QueueItem, ...] = ()

    @property
    def length(self) -> int:
        return len(self.items)


def summarise_queue(
    waiting: Iterable[WaitingItem], estimates: Mapping[str, datetime | None], now: datetime
) -> QueueSummary:
    waiting = list(waiting)
    positions = queue_positions(waiting, now)
    kinds = {item.id: item.kind for item in waiting}
    return QueueSummary(
        tuple(
            QueueItem(kinds[i].value, i, position, estimates.get(i))
            for i, position in sorted(positions.items(), key=lambda p: p[1])
        )
    )


def queue_now(uow: UnitOfWork, now: datetime) -> QueueSummary:
    """The queue with the estimates last stored (cheap: no estimating here)."""
    runs, holds = uow.test_runs.list_waiting(), uow.holds.list_waiting()
    estimates = {item.id: item.estimated_start_at for item in [*runs, *holds]}
    items = [*(waiting_item(r) for r in runs), *(hold_item(h) for h in holds)]
    return summarise_queue(items, estimates, now)


def estimate_waiting(
    waiting: Sequence[WaitingItem],
    devices: Iterable[DeviceView],
    expected_free_at: Mapping[str, datetime],
    now: datetime,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, datetime | None]:
    """The estimated start of every waiting item; only the first `limit` of the queue are
    estimated (None for the rest, and for items that time out or cannot be told)."""
    positions = queue_positions(waiting, now)
    head = [item for item in waiting if positions.get(item.id, limit + 1) <= limit]
    estimates: dict[str, datetime | None] = dict.fromkeys((item.id for item in waiting), None)
    if head:
        estimates.update(estimate_starts(head, devices, now, expected_free_at))
    return estimates


def runs_free_at(
    booked: Iterable[TestRun], now: datetime, measured: Measured, holds: Iterable[Hold] = ()
) -> dict[str, datetime]:
    """Device id -> when the booked run or active hold that has it gives it back (a hold at
    its expiry: released early it only frees its devices sooner)."""
    ends: dict[str, datetime] = {}
    for run in booked:
        at = expected_free_at(run, now, measured)
        for device_id in run.device_ids:
            ends[device_id] = at
    for hold in holds:
        if hold.expires_at is not None:
            for device_id in hold.device_ids:
                ends[device_id] = max(now, hold.expires_at)
    return ends


def _moved(before: datetime | None, after: datetime | None, threshold_s: float) -> bool:
    if before is None or after is None:
        return before is not after
    return abs((after - before).total_seconds()) > threshold_s


@dataclass(frozen=True)
class EstimateOutcome:
    waiting: int = 0
    estimated: int = 0  # of which an estimate is known
    written: dict[str, datetime | None] = field(default_factory=dict)  # moved, and stored


class EstimateQueue:
    """Estimate every waiting run's and hold's start and store the ones that moved. Kept by the worker
    between passes: it remembers the measured case durations for `history_ttl_s`."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        limit: int = DEFAULT_LIMIT,
        threshold_s: float = THRESHOLD_S,
        history_ttl_s: float = HISTORY_TTL_S,
    ) -> None:
        self.uow, self.clock = uow, clock
        self.limit, self.threshold_s, self.history_ttl_s = limit, threshold_s, history_ttl_s
        self._measured: dict[str, tuple[datetime, list[float]]] = {}

    def __call__(self) -> EstimateOutcome:
        now = self.clock.now()
        # read without the write lock (SQLite) or a long transaction (PostgreSQL)
        with self.uow(read_only=True) as uow:
            waiting = uow.test_runs.list_waiting()
            waiting_holds = uow.holds.list_waiting()
            if not waiting and not waiting_holds:
                return EstimateOutcome()
            booked = uow.test_runs.list_booked()
            active_holds = uow.holds.list_active()
            devices: list[Device] = all_devices(uow)
            measured = self._measured_durations(uow, [*waiting, *booked], now)
        items = [
            *(
                replace(waiting_item(run), expected_duration_s=expected_duration_s(run, measured))
                for run in waiting
            ),
            *(hold_item(hold) for hold in waiting_holds),
        ]
        estimates = estimate_waiting(
            items,
            [device_view(d) for d in devices],
            runs_free_at(booked, now, measured, active_holds),
            now,
            self.limit,
        )
        moved_runs, moved_holds = (
            {
                item.id: estimates[item.id]
                for item in kind
                if _moved(item.estimated_start_at, estimates[item.id], self.threshold_s)
            }
            for kind in (waiting, waiting_holds)
        )
        if moved_runs or moved_holds:
            with self.uow() as uow:
                # the pass's lock: estimates and bookings never hold each other's rows
                uow.test_runs.lock_queue()
                uow.test_runs.set_estimated_starts(moved_runs)
                uow.holds.set_estimated_starts(moved_holds)
                uow.commit()
        known = sum(1 for at in estimates.values() if at is not None)
        return EstimateOutcome(len(items), known, {**moved_runs, **moved_holds})

    def _measured_durations(
        self, uow: UnitOfWork, runs: Iterable[TestRun], now: datetime
    ) -> Measured:
        case_ids = {case.id for run in runs for case in run.test_cases}
        stale = sorted(
            i
            for i in case_ids
            if i not in self._measured
            or (now - self._measured[i][0]).total_seconds() >= self.history_ttl_s
        )
        if stale:
            fresh = uow.test_runs.measured_case_durations(stale, MEASURED_RUNS)
            for case_id in stale:
                self._measured[case_id] = (now, fresh.get(case_id, []))
        for case_id in set(self._measured) - case_ids:
            del self._measured[case_id]  # only the cases of the queue and the booked runs
        return {i: self._measured[i][1] for i in case_ids}
