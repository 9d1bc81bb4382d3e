"""The scheduling pass: waiting runs and holds get their devices when all of them can be had.

Runs and holds wait in one queue, in one order (domain.scheduling): a hold never overtakes a
run it would take devices from, nor a run a hold. A run that starts is queued for a runner
(its job goes into the outbox); a hold that starts is simply active: nothing to send.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from application.errors import ConcurrentUpdate
from application.job_contract import JOB_KIND, job_payload
from application.ports import Clock, DeviceFilter, IdGenerator, OutboxMessage, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from domain.devices import Device
from domain.errors import DeviceUnavailable
from domain.holds import Hold
from domain.queueing import book, book_hold, device_view, hold_item, waiting_item
from domain.scheduling import (
    Demand,
    ItemKind,
    Plan,
    Signature,
    WaitingFor,
    plan,
    queue_positions,
)
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
    "devices_for",
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


# More distinct kinds asked for than this and one read of the whole lab is the cheaper query.
_MAX_SIGNATURES = 40


def devices_for(uow: UnitOfWork, demands: Iterable[Demand]) -> list[Device]:
    """The devices a scheduling pass over `demands` can see: the named ones and those of a
    kind some request part asks for, retired ones too, in the order of all_devices. A device
    no demand names or matches never changes a pass, so a start or a pass costs what its
    queue asks for, not the size of the lab. A part that asks for any device needs them all."""
    named: set[str] = set()
    signatures: set[Signature] = set()
    for demand in demands:
        named.update(demand.device_ids)
        signatures.update(r.signature for r in demand.requests)
    if any(s.model is None and not s.labels for s in signatures) or (
        len(signatures) > _MAX_SIGNATURES
    ):
        return all_devices(uow)
    return uow.devices.list_relevant(sorted(named), sorted(signatures, key=_signature_key))


def _signature_key(signature: Signature) -> tuple:
    return (signature.model or "", signature.labels)


@dataclass(frozen=True)
class SchedulingOutcome:
    started: list[str] = field(default_factory=list)  # runs now queued for a runner
    holds_started: list[str] = field(default_factory=list)  # holds now active
    timed_out: list[str] = field(default_factory=list)  # ended: waited too long (runs, holds)
    unsatisfiable: dict[str, str] = field(default_factory=dict)  # ended: item id -> why


def schedule_in(uow: UnitOfWork, ids: IdGenerator, now: datetime) -> SchedulingOutcome:
    """One pass inside the caller's unit of work (which commits): end the runs and holds
    that waited too long or can never be satisfied, then book every item the scheduler
    starts — all of its devices in one go — and put a started run's job in the outbox."""
    uow.test_runs.lock_queue()  # one queue lock for runs and holds
    waiting_runs = uow.test_runs.list_waiting()
    waiting_holds = uow.holds.list_waiting()
    if not waiting_runs and not waiting_holds:
        return SchedulingOutcome()
    runs = {r.id: r for r in waiting_runs}
    holds = {h.id: h for h in waiting_holds}
    items = [*map(waiting_item, waiting_runs), *map(hold_item, waiting_holds)]
    views = [device_view(d) for d in devices_for(uow, (i.demand for i in items))]
    # plan(), not schedule(): only plan reports the items that can never start
    decided = plan(items, views, now)
    outcome = SchedulingOutcome()
    for item_id in decided.timed_out:
        item = runs.get(item_id) or holds[item_id]
        ended = (
            item.expire_in_queue(now)
            if isinstance(item, TestRun)
            else item.expire_in_queue(now, SCHEDULER)
        )
        if ended and _saved(uow, item):
            outcome.timed_out.append(item_id)
    for item_id, problems in decided.unsatisfiable.items():
        item = runs.get(item_id) or holds[item_id]
        why = "; ".join(p.describe(item.demand) for p in problems)
        if isinstance(item, TestRun):
            item.abort(now, SCHEDULER, f"{UNSATISFIABLE_REASON}: {why}")
        else:
            item.give_up(now, SCHEDULER, f"{UNSATISFIABLE_REASON}: {why}")
        if _saved(uow, item):
            outcome.unsatisfiable[item_id] = why
    for assignment in decided.assignments:
        locked = uow.devices.get_many_for_update(list(assignment.devices))
        run, hold = runs.get(assignment.item_id), holds.get(assignment.item_id)
        try:
            if run is not None:
                booked = book(run, assignment.devices, locked, now, run.started_by)
            elif hold is not None:
                booked = book_hold(hold, assignment.devices, locked, now)
        except DeviceUnavailable:
            continue  # changed since it was read; the next pass decides again
        item = run or hold
        if item is None or not _saved(uow, item):
            continue  # its devices were only reserved in memory: nothing is written
        for device in booked:
            uow.devices.update(device)
        if run is not None:
            uow.outbox.add(OutboxMessage(ids.new_id(), JOB_KIND, run.id, job_payload(run), now))
            outcome.started.append(run.id)
        else:
            outcome.holds_started.append(item.id)
    return outcome


def _saved(uow: UnitOfWork, item: TestRun | Hold) -> bool:
    """Write the run or hold; False if it changed since the pass read it (a cancel got
    there first): the pass leaves it alone rather than fail as a whole. A refused version
    check writes nothing and leaves the transaction usable."""
    try:
        if isinstance(item, TestRun):
            uow.test_runs.update(item)
        else:
            uow.holds.update(item)
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
    """A waiting run or hold (`kind` says which; the other one is None) and its place."""

    position: int
    waiting_for: WaitingFor | None
    run: TestRun | None = None
    hold: Hold | None = None

    @property
    def kind(self) -> ItemKind:
        return ItemKind.RUN if self.run is not None else ItemKind.HOLD

    @property
    def id(self) -> str:
        item = self.run or self.hold
        assert item is not None
        return item.id


class GetQueue:
    """The waiting runs and holds in queue order, with their position and what each waits
    for (from the same pass the scheduler makes, without booking anything)."""

    def __init__(self, uow: UowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(self) -> list[QueueEntry]:
        with self.uow(read_only=True) as uow:
            waiting = uow.test_runs.list_waiting()
            holds = uow.holds.list_waiting()
            if not waiting and not holds:
                return []
            devices = devices_for(uow, [item.demand for item in (*waiting, *holds)])
        return queue_of(waiting, devices, self.clock.now(), holds)


def queue_of(
    waiting: list[TestRun], devices: list[Device], now: datetime, holds: list[Hold] | None = None
) -> list[QueueEntry]:
    """The queue in order: waiting runs and `holds` together."""
    holds = holds or []
    items = [*map(waiting_item, waiting), *map(hold_item, holds)]
    decided: Plan = plan(items, [device_view(d) for d in devices], now)
    positions = queue_positions(items, now)
    explained = {w.item_id: w for w in decided.waiting}
    entries = [
        QueueEntry(positions[r.id], explained.get(r.id), run=r)
        for r in waiting
        if r.id in positions
    ]
    entries += [
        QueueEntry(positions[h.id], explained.get(h.id), hold=h) for h in holds if h.id in positions
    ]
    return sorted(entries, key=lambda e: e.position)
