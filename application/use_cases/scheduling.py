"""The scheduling pass: waiting runs get their devices when all of them can be had.

The decision is domain.scheduling's (pure); this module loads what it needs, calls it and
books the answer in the caller's unit of work. Every pass first takes the queue lock
(`test_runs.lock_queue()`: an advisory transaction lock on PostgreSQL; on SQLite the write
transaction is already exclusive), so two passes, in any processes, never decide on the same
free devices: the second one sees what the first booked.

Lock order: a pass takes the queue lock before any device row. A transaction that already
holds device rows (a run that just ended, a device just changed) must therefore not run a
pass itself: it commits first, and the pass runs right after in its own transaction
(`after_devices_freed`). If that process dies in between, the worker's periodic pass books
the freed devices a few seconds later."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from application.errors import ConcurrentUpdate
from application.job_contract import JOB_KIND, job_payload
from application.ports import Clock, DeviceFilter, IdGenerator, OutboxMessage, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from domain.devices import Device
from domain.errors import DeviceUnavailable
from domain.queueing import book, device_view, waiting_item
from domain.scheduling import Plan, WaitingFor, plan, queue_positions
from domain.test_runs import TestRun

SCHEDULER = "scheduler"
UNSATISFIABLE_REASON = "no devices of the lab can satisfy it"
_DEVICE_PAGE = 1000
_log = logging.getLogger(__name__)

__all__ = [
    "UNSATISFIABLE_REASON",
    "GetQueue",
    "QueueEntry",
    "ScheduleWaitingRuns",
    "SchedulingOutcome",
    "after_devices_freed",
    "all_devices",
    "schedule_in",
]


def all_devices(uow: UnitOfWork) -> list[Device]:
    """Every device, retired ones too: the scheduler must tell "retired" (never bookable, a
    named retired device makes a run impossible) from "unknown"."""
    devices: list[Device] = []
    after: tuple | None = None
    while True:
        page = uow.devices.list(DeviceFilter(include_retired=True), _DEVICE_PAGE, after)
        devices.extend(page)
        if len(page) < _DEVICE_PAGE:
            return devices
        after = (page[-1].name, page[-1].id)


@dataclass(frozen=True)
class SchedulingOutcome:
    started: list[str] = field(default_factory=list)  # runs now queued for a runner
    timed_out: list[str] = field(default_factory=list)  # aborted: waited too long
    unsatisfiable: dict[str, str] = field(default_factory=dict)  # aborted: run id -> why


def schedule_in(uow: UnitOfWork, ids: IdGenerator, now: datetime) -> SchedulingOutcome:
    """One pass inside the caller's unit of work (which commits): abort the runs that
    waited too long or can never be satisfied, then book every run the scheduler starts —
    all of its devices in one go — and put its job in the outbox."""
    uow.test_runs.lock_queue()
    waiting = uow.test_runs.list_waiting()
    if not waiting:
        return SchedulingOutcome()
    runs = {r.id: r for r in waiting}
    devices = all_devices(uow)
    views = [device_view(d) for d in devices]
    items = [waiting_item(r) for r in waiting]
    # plan(), not schedule(): only plan reports the runs that can never start
    decided = plan(items, views, now)
    outcome = SchedulingOutcome()
    for run_id in decided.timed_out:
        run = runs[run_id]
        if run.expire_in_queue(now) and _saved(uow, run):
            outcome.timed_out.append(run_id)
    for run_id, problems in decided.unsatisfiable.items():
        run = runs[run_id]
        why = "; ".join(p.describe(run.demand) for p in problems)
        run.abort(now, SCHEDULER, f"{UNSATISFIABLE_REASON}: {why}")
        if _saved(uow, run):
            outcome.unsatisfiable[run_id] = why
    for assignment in decided.assignments:
        run = runs[assignment.item_id]
        locked = uow.devices.get_many_for_update(list(assignment.devices))
        try:
            booked = book(run, assignment.devices, locked, now, run.started_by)
        except DeviceUnavailable:
            continue  # changed since it was read; the next pass decides again
        if not _saved(uow, run):
            continue  # its devices were only reserved in memory: nothing is written
        for device in booked:
            uow.devices.update(device)
        uow.outbox.add(OutboxMessage(ids.new_id(), JOB_KIND, run.id, job_payload(run), now))
        outcome.started.append(run.id)
    return outcome


def _saved(uow: UnitOfWork, run: TestRun) -> bool:
    """Write the run; False if it changed since the pass read it (a cancel got there
    first): the pass leaves it alone rather than fail as a whole. A refused version check
    writes nothing and leaves the transaction usable."""
    try:
        uow.test_runs.update(run)
    except ConcurrentUpdate:
        return False
    return True


class ScheduleWaitingRuns:
    """One scheduling pass in its own unit of work (the worker's safety net, and the pass
    after devices may have become free)."""

    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self) -> SchedulingOutcome:
        with self.uow() as uow:
            outcome = schedule_in(uow, self.ids, self.clock.now())
            uow.commit()
        return outcome


def after_devices_freed(pass_: Callable[[], object] | None) -> None:
    """Run the pass after a commit that may have freed devices. A failure here must not
    turn the already committed change into an error for its caller: the worker's periodic
    pass retries, so it is left to that."""
    if pass_ is None:
        return
    try:
        pass_()
    except Exception:
        _log.warning(
            "scheduling pass after freed devices failed; the worker retries", exc_info=True
        )


@dataclass(frozen=True)
class QueueEntry:
    run: TestRun
    position: int
    waiting_for: WaitingFor | None


class GetQueue:
    """The waiting runs in queue order, with their position and what each waits for (from
    the same pass the scheduler makes, without booking anything)."""

    def __init__(self, uow: UowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(self) -> list[QueueEntry]:
        with self.uow(read_only=True) as uow:
            waiting = uow.test_runs.list_waiting()
            if not waiting:
                return []
            devices = all_devices(uow)
        return queue_of(waiting, devices, self.clock.now())


def queue_of(waiting: list[TestRun], devices: list[Device], now: datetime) -> list[QueueEntry]:
    items = [waiting_item(r) for r in waiting]
    decided: Plan = plan(items, [device_view(d) for d in devices], now)
    positions = queue_positions(items, now)
    explained = {w.item_id: w for w in decided.waiting}
    return [
        QueueEntry(run, positions[run.id], explained.get(run.id))
        for run in waiting
        if run.id in positions
    ]
