"""One full scheduling pass: the definition of what the scheduler decides. The incremental
scheduler (incremental.py) must give exactly the same answer; the tests hold it to that."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from domain.scheduling.catalog import Catalog, shortfalls
from domain.scheduling.matching import complete_filling, unfilled_places
from domain.scheduling.model import (
    LIVE,
    Assignment,
    DeviceState,
    DeviceView,
    PartWait,
    Plan,
    Shortfall,
    Signature,
    WaitingFor,
    WaitingItem,
    by_id,
    for_booking,
    in_queue_order,
)


class _FreeDevices:
    """The bookable devices during one pass. Devices only ever leave the available set in a
    pass (booked or kept for an item), which lets each signature's list keep a cursor past
    its leading unavailable entries."""

    def __init__(self, views: dict[str, DeviceView]) -> None:
        bookable = sorted(
            (d for d in views.values() if d.state is DeviceState.BOOKABLE), key=lambda d: d.rank
        )
        self.catalog = Catalog(bookable)
        self.available = {d.id for d in bookable}
        self._start: dict[Signature, int] = {}

    def best(self, signature: Signature, wanted: int, named: set[str]) -> list[str]:
        found = self.catalog.matching(signature)
        available = self.available
        start = self._start.get(signature, 0)
        while start < len(found) and found[start] not in available:
            start += 1
        self._start[signature] = start
        best: list[str] = []
        for device in found[start:]:
            if device in available and device not in named:
                best.append(device)
                if len(best) == wanted:
                    break
        return best

    def usable(self, signature: Signature) -> list[str]:
        found = self.catalog.matching(signature)
        start = self._start.get(signature, 0)
        return [d for d in found[start:] if d in self.available]

    def keep(self, devices: Iterable[str], signatures: Iterable[Signature]) -> None:
        self.available.difference_update(devices)
        for signature in signatures:  # every device of these is now booked or kept
            self._start[signature] = len(self.catalog.matching(signature))


def _pass(
    waiting: Iterable[WaitingItem],
    devices: Iterable[DeviceView],
    now: datetime,
    explain: bool,
) -> Plan:
    items = in_queue_order(waiting)
    views = by_id(for_booking(items, devices, now))
    timed_out = tuple(i.id for i in items if i.timed_out(now))
    items = [i for i in items if not i.timed_out(now)]
    lab = Catalog(
        sorted(
            (d for d in views.values() if d.state is not DeviceState.RETIRED), key=lambda d: d.rank
        )
    )
    # the devices an item may get without a person acting first: free now, or when a run ends
    coming = Catalog(sorted((d for d in views.values() if d.state in LIVE), key=lambda d: d.rank))
    free = _FreeDevices(views)
    assignments: list[Assignment] = []
    blocked: list[tuple[WaitingItem, set[str] | None]] = []  # None: dormant, keeps nothing
    unsatisfiable: dict[str, tuple[Shortfall, ...]] = {}
    booked: set[str] = set()
    for item in items:
        demand = item.demand
        problems = shortfalls(demand, views.get, lab.matching)
        if problems:
            # an item that can never start keeps nothing from the items behind it
            unsatisfiable[item.id] = problems
            continue
        if shortfalls(demand, coming.views.get, coming.matching):
            # dormant: it needs a device in maintenance or offline to come back, so it keeps
            # nothing (a week of maintenance must not stall the devices it could also use)
            if explain:
                blocked.append((item, None))
            continue
        if not free.available and not explain:
            break  # nothing left to give: every later item waits
        named = set(demand.device_ids)
        signatures = [r.signature for r in demand.requests]
        filling = None
        if named <= free.available:
            wanted = demand.requested
            candidates = [free.best(s, wanted, named) for s in signatures]
            filling = complete_filling(demand, candidates)
        if filling is not None:
            free.keep(filling, ())
            booked.update(filling)
            assignments.append(Assignment(item.id, filling))
            continue
        # It cannot start: every free device it could use is kept from the items behind it,
        # which all come later in the order (same or lower priority, submitted after it).
        kept = named & free.available
        for signature in signatures:
            kept.update(free.usable(signature))
        free.keep(kept, signatures)
        if explain:
            blocked.append((item, kept))
    waiting_for = ()
    if explain:
        waiting_for = tuple(
            _waiting_for(item, position, kept, views, free, booked)
            for position, (item, kept) in enumerate(blocked, start=1)
        )
    return Plan(tuple(assignments), waiting_for, unsatisfiable, timed_out)


def _waiting_for(
    item: WaitingItem,
    position: int,
    kept: set[str] | None,
    views: dict[str, DeviceView],
    free: _FreeDevices,
    booked: set[str],
) -> WaitingFor:
    """What a blocked item waits for. A dormant item (`kept` None) keeps nothing; the free
    devices nobody kept are free for it, and what it really waits for is a device to come back."""
    demand = item.demand
    bookable = free.catalog
    if kept is None:
        kept, taken = set(free.available), "kept for another item"
    else:
        taken = "kept for an earlier item"
    devices = {}
    for device_id in demand.device_ids:
        if device_id in kept:
            continue
        state = views[device_id].state
        if state is DeviceState.BOOKABLE:
            devices[device_id] = "booked now" if device_id in booked else taken
        elif views[device_id].health_checks_only:
            devices[device_id] = "bad"  # booked for its health checks only (for_booking)
        else:
            devices[device_id] = state.value
    named = set(demand.device_ids)
    wanted = demand.requested
    candidates, free_for_it = [], []
    for request in demand.requests:
        signature = request.signature
        mine = [d for d in kept if d not in named and signature.matches(views[d])]
        mine.sort(key=lambda d: views[d].rank)
        free_for_it.append(len(mine))
        candidates.append(mine[:wanted])
    missing = unfilled_places(demand, candidates) if demand.requests else []
    parts = []
    for part, request in enumerate(demand.requests):
        if missing[part]:
            bookable_named = sum(
                1
                for d in named
                if views[d].state is DeviceState.BOOKABLE and request.signature.matches(views[d])
            )
            others = len(bookable.matching(request.signature)) - free_for_it[part] - bookable_named
            parts.append(PartWait(part, request, missing[part], free_for_it[part], others))
    return WaitingFor(item.id, position, devices, tuple(parts))


def schedule(
    waiting: Iterable[WaitingItem], devices: Iterable[DeviceView], now: datetime
) -> list[Assignment]:
    """Which waiting items start now, on which devices (see the package docstring)."""
    return list(_pass(waiting, devices, now, explain=False).assignments)


def plan(waiting: Iterable[WaitingItem], devices: Iterable[DeviceView], now: datetime) -> Plan:
    """The same pass as schedule(), also saying what every item left waiting waits for."""
    return _pass(waiting, devices, now, explain=True)


def queue_positions(waiting: Iterable[WaitingItem], now: datetime) -> dict[str, int]:
    """1-based place of each waiting item in the queue (timed-out items have none)."""
    items = [i for i in in_queue_order(waiting) if not i.timed_out(now)]
    return {item.id: position for position, item in enumerate(items, start=1)}


def timed_out(waiting: Iterable[WaitingItem], now: datetime) -> list[str]:
    """Items whose queue timeout has passed: they must not start; the caller aborts them."""
    return [i.id for i in in_queue_order(waiting) if i.timed_out(now)]
