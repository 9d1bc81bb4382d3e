"""The scheduler kept in memory between passes, so that a pass after a small change (a device
frees up, an item arrives or leaves) costs work in proportion to the change, not to the lab.

Why this gives exactly the answer of a full pass. After a pass every item left waiting is
blocked, and a blocked item keeps every free device it could use. So at rest each free device
is kept by its *first user*, the earliest waiting item that could use it, and no item can be
filled from the devices it keeps. That state depends only on which items wait and which
devices are free, never on the history that led to it. Then:

- A free device that goes away (booked elsewhere, maintenance, offline, retired) only shrinks
  its keeper's set: the keeper was blocked with more, so it stays blocked; nothing else moves.
- A device that becomes free, or the devices of an item that leaves, are "in transit": each
  goes to its first user. That item takes them and is tried again; if it starts, the devices
  it keeps but does not take go on to their next user behind it. The walk only ever moves
  back along the queue, and only through items that could use a device in transit — exactly
  the items whose decision a full pass could change.
- A new item is tried at its place: it takes the free devices it could use from any keeper
  behind it (those keepers only lose devices) and either starts or keeps them.

Handling these events in queue order is the full pass restricted to the items it could
decide differently. Device preference (fewest labels, latest seen) only matters when an item
starts, and the starting item is filled from its kept devices exactly as the full pass would.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from domain.errors import InvalidValue
from domain.scheduling.catalog import shortfalls
from domain.scheduling.matching import complete_filling
from domain.scheduling.model import (
    LIVE,
    Assignment,
    DeviceState,
    DeviceView,
    Signature,
    WaitingItem,
)

Key = tuple[int, int, datetime, str]


class _Buckets:
    """A changing set of devices, bucketed by model and label like the pass's Catalog."""

    def __init__(self) -> None:
        self.every: set[str] = set()
        self.by_model: dict[str, set[str]] = {}
        self.by_label: dict[tuple[str, str], set[str]] = {}

    def add(self, device: DeviceView) -> None:
        self.every.add(device.id)
        self.by_model.setdefault(device.model, set()).add(device.id)
        for pair in device.labels.items():
            self.by_label.setdefault(pair, set()).add(device.id)

    def remove(self, device: DeviceView) -> None:
        self.every.discard(device.id)
        self.by_model.get(device.model, set()).discard(device.id)
        for pair in device.labels.items():
            self.by_label.get(pair, set()).discard(device.id)

    def matching(self, signature: Signature) -> set[str]:
        """The devices matching the signature: an intersection of buckets, done in C."""
        buckets = [self.every]
        if signature.model is not None:
            buckets.append(self.by_model.get(signature.model, _NONE))
        buckets += [self.by_label.get(pair, _NONE) for pair in signature.labels]
        if len(buckets) == 1:
            return self.every
        buckets.sort(key=len)
        return buckets[0].intersection(*buckets[1:-1]) if len(buckets) > 2 else set(buckets[0])


_NONE: frozenset[str] = frozenset()


class LabScheduler:
    """Feed it the lab's changes (set_device, remove_device, submit, withdraw) and call
    run(now): it answers what schedule() would answer for its current items and devices, and
    books what it assigns (those devices become busy, those items leave the queue)."""

    def __init__(self, devices: Iterable[DeviceView] = (), waiting: Iterable[WaitingItem] = ()):
        self._views: dict[str, DeviceView] = {}
        self._items: dict[str, WaitingItem] = {}
        # devices in use or usable (not out of service): an item that cannot be filled from
        # them is left out (unsatisfiable, or dormant until a device comes back), keeps nothing
        self._lab = _Buckets()
        self._lab_counts: dict[Signature, int] = {}
        self._free = _Buckets()  # bookable devices
        self._feasible: set[str] = set()
        self._items_naming: dict[str, set[str]] = {}  # every item, for feasibility checks
        self._items_asking: dict[Signature, set[str]] = {}
        self._users_naming: dict[str, list[Key]] = {}  # feasible items only, in queue order
        self._users_asking: dict[Signature, list[Key]] = {}
        self._signatures_by_model: dict[str | None, list[Signature]] = {}
        self._signature_version = 0
        self._signatures_of: dict[tuple, tuple[int, list[Signature]]] = {}  # by device kind
        self._matches: dict[tuple[Signature, tuple], bool] = {}
        self._by_key: dict[Key, WaitingItem] = {}
        self._keeper: dict[str, Key] = {}
        self._kept: dict[Key, set[str]] = {}
        # per kept item, how many of its kept devices match each request part (named devices
        # aside): a cheap "still cannot start" before trying a matching
        self._part_counts: dict[Key, list[int]] = {}
        self._transit: set[str] = set()
        self._pending: list[Key] = []  # heap of items still to be tried at their place
        self._deadlines: list[tuple[datetime, str]] = []
        for device in devices:
            self.set_device(device)
        for item in waiting:
            self.submit(item)

    # -- what it holds --------------------------------------------------------------------

    def devices(self) -> list[DeviceView]:
        return list(self._views.values())

    def device(self, device_id: str) -> DeviceView:
        return self._views[device_id]

    def waiting(self) -> list[WaitingItem]:
        return list(self._items.values())

    def kept_by(self, item_id: str) -> frozenset[str]:
        """The free devices the item keeps from the items behind it (as of the last run)."""
        key = self._items[item_id].order_key
        return frozenset(self._kept.get(key, ()))

    # -- changes --------------------------------------------------------------------------

    def set_device(self, device: DeviceView) -> None:
        """A device was created or changed (state, model, labels, last seen)."""
        old = self._views.get(device.id)
        same_kind = old is not None and old.kind == device.kind
        live = device.state in LIVE
        bookable = device.state is DeviceState.BOOKABLE
        lab_same = same_kind and (old.state in LIVE) == live
        free_same = same_kind and (old.state is DeviceState.BOOKABLE) == bookable
        if old is not None:
            if not lab_same and old.state in LIVE:
                self._lab.remove(old)
                self._count(old, -1)
            if not free_same and old.state is DeviceState.BOOKABLE:
                self._forget_free(old)
        self._views[device.id] = device
        if not lab_same and live:
            self._lab.add(device)
            self._count(device, +1)
        if not free_same and bookable:
            self._free.add(device)
            self._transit.add(device.id)
        if not lab_same:
            self._recheck_feasibility(device.id, old, device)

    def remove_device(self, device_id: str) -> None:
        old = self._views.get(device_id)
        if old is None:
            return
        if old.state in LIVE:
            self._lab.remove(old)
            self._count(old, -1)
        if old.state is DeviceState.BOOKABLE:
            self._forget_free(old)
        del self._views[device_id]
        self._recheck_feasibility(device_id, old, None)

    def submit(self, item: WaitingItem) -> None:
        if item.id in self._items:
            raise InvalidValue("waiting", f"item {item.id} is already waiting")
        self._items[item.id] = item
        self._by_key[item.order_key] = item
        for device_id in item.demand.device_ids:
            self._items_naming.setdefault(device_id, set()).add(item.id)
        for signature in {r.signature for r in item.demand.requests}:
            self._items_asking.setdefault(signature, set()).add(item.id)
            if signature not in self._lab_counts:
                self._lab_counts[signature] = len(self._lab.matching(signature))
        if item.times_out_at is not None:
            heapq.heappush(self._deadlines, (item.times_out_at, item.id))
        if not self._unsatisfiable(item):
            self._enter(item)

    def withdraw(self, item_id: str) -> None:
        """The item left the queue (cancelled, timed out, or started elsewhere)."""
        item = self._items.pop(item_id, None)
        if item is None:
            return
        if item.id in self._feasible:
            self._leave(item)
        del self._by_key[item.order_key]
        for device_id in item.demand.device_ids:
            self._items_naming[device_id].discard(item.id)
        for signature in {r.signature for r in item.demand.requests}:
            self._items_asking[signature].discard(item.id)

    def expire(self, now: datetime) -> list[str]:
        """Withdraw the items whose queue timeout has passed; returns their ids."""
        gone = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, item_id = heapq.heappop(self._deadlines)
            item = self._items.get(item_id)
            if item is not None and item.timed_out(now):
                self.withdraw(item_id)
                gone.append(item_id)
        return gone

    # -- the pass -------------------------------------------------------------------------

    def run(self, now: datetime) -> list[Assignment]:
        self.expire(now)
        arrivals: list[tuple[Key, int, list[str]]] = []  # (first user, n, devices) in transit
        self._send_all_on(None, arrivals)
        assignments = []
        pending = self._pending
        while arrivals or pending:
            if not pending or (arrivals and arrivals[0][0] < pending[0]):
                key = arrivals[0][0]
            else:
                key = pending[0]
            item = self._by_key[key]
            took = False
            while arrivals and arrivals[0][0] == key:
                self._keep_all(item, heapq.heappop(arrivals)[2])
                took = True
            if pending and pending[0] == key:
                heapq.heappop(pending)
                for device_id in self._claim(item):
                    keeper = self._keeper.get(device_id)
                    if keeper != key:
                        if keeper is not None:
                            self._lose(keeper, device_id)
                        self._keep(item, device_id)
                        took = True
            if not took:
                continue
            filling = self._fill(item, self._kept[key])
            if filling is None:
                continue
            assignments.append(Assignment(item.id, filling))
            self.withdraw(item.id)  # what it kept is in transit now
            for device_id in filling:  # (withdrawn: nobody keeps them any more)
                self.set_device(replace(self._views[device_id], state=DeviceState.BUSY))
            self._send_all_on(key, arrivals)  # nobody ahead of it could use them
        return assignments

    def _send_all_on(self, after: Key | None, arrivals: list[tuple[Key, int, list[str]]]) -> None:
        """Send each device in transit to its first user behind `after`. Devices of one kind
        that no item names go to the same user, so they travel together."""
        by_kind: dict[tuple, list[str]] = {}
        for device_id in self._transit:
            if self._users_naming.get(device_id):
                user = self._first_user(device_id, after)
                if user is not None:
                    heapq.heappush(arrivals, (user, len(arrivals), [device_id]))
            else:
                by_kind.setdefault(self._views[device_id].kind, []).append(device_id)
        for devices in by_kind.values():
            user = self._first_user(devices[0], after)
            if user is not None:
                heapq.heappush(arrivals, (user, len(arrivals), devices))
        self._transit.clear()

    # -- inside ---------------------------------------------------------------------------

    def _forget_free(self, old: DeviceView) -> None:
        self._free.remove(old)
        self._transit.discard(old.id)
        keeper = self._keeper.get(old.id)
        if keeper is not None:
            self._lose(keeper, old.id)

    def _keep(self, item: WaitingItem, device_id: str) -> None:
        key = item.order_key
        self._keeper[device_id] = key
        kept = self._kept.get(key)
        if kept is None:
            kept = self._kept[key] = set()
            self._part_counts[key] = [0] * len(item.demand.requests)
        kept.add(device_id)
        if device_id not in item.demand.device_ids:
            view, counts = self._views[device_id], self._part_counts[key]
            for part, request in enumerate(item.demand.requests):
                if self._match(request.signature, view):
                    counts[part] += 1

    def _keep_all(self, item: WaitingItem, devices: list[str]) -> None:
        """Devices in transit (kept by nobody) arrive at their first user: one named device,
        or devices of one kind that no item names, counted as one."""
        if len(devices) == 1:
            self._keep(item, devices[0])
            return
        key = item.order_key
        kept = self._kept.get(key)
        if kept is None:
            kept = self._kept[key] = set()
            self._part_counts[key] = [0] * len(item.demand.requests)
        kept.update(devices)
        self._keeper.update(dict.fromkeys(devices, key))
        view, counts = self._views[devices[0]], self._part_counts[key]
        for part, request in enumerate(item.demand.requests):
            if self._match(request.signature, view):
                counts[part] += len(devices)

    def _lose(self, key: Key, device_id: str) -> None:
        del self._keeper[device_id]
        self._kept[key].remove(device_id)
        item = self._by_key[key]
        if device_id not in item.demand.device_ids:
            view, counts = self._views[device_id], self._part_counts[key]
            for part, request in enumerate(item.demand.requests):
                if self._match(request.signature, view):
                    counts[part] -= 1

    def _match(self, signature: Signature, view: DeviceView) -> bool:
        pair = (signature, view.kind)
        found = self._matches.get(pair)
        if found is None:
            found = self._matches[pair] = signature.matches(view)
        return found

    def _count(self, device: DeviceView, delta: int) -> None:
        counts = self._lab_counts
        for signature in counts:
            if signature.matches(device):
                counts[signature] += delta

    def _recheck_feasibility(
        self, device_id: str, old: DeviceView | None, new: DeviceView | None
    ) -> None:
        affected = set(self._items_naming.get(device_id, ()))
        for view in (old, new):
            if view is not None:
                for signature in self._signatures_matching(view, self._items_asking):
                    affected |= self._items_asking[signature]
        for item_id in sorted(affected):
            item = self._items[item_id]
            could = not self._unsatisfiable(item)
            if could and item_id not in self._feasible:
                self._enter(item)
            elif not could and item_id in self._feasible:
                self._leave(item)

    def _signatures_matching(self, view: DeviceView, index: dict[Signature, set[str]]):
        return [s for s in index if index[s] and s.matches(view)]

    def _live_view(self, device_id: str) -> DeviceView | None:
        view = self._views.get(device_id)
        return view if view is not None and view.state in LIVE else None

    def _unsatisfiable(self, item: WaitingItem) -> bool:
        """Whether the item cannot be filled from the devices in use or usable: it can never
        start (the full pass reports it) or not before a device comes back (dormant)."""
        return bool(
            shortfalls(
                item.demand,
                self._live_view,
                self._lab.matching,
                self._lab_counts.__getitem__,
            )
        )

    def _enter(self, item: WaitingItem) -> None:
        """The item can be satisfied once runs end: it becomes a user of what it asks for."""
        self._feasible.add(item.id)
        key = item.order_key
        for device_id in item.demand.device_ids:
            bisect.insort(self._users_naming.setdefault(device_id, []), key)
        for signature in {r.signature for r in item.demand.requests}:
            users = self._users_asking.get(signature)
            if users is None:
                users = self._users_asking[signature] = []
                self._signatures_by_model.setdefault(signature.model, []).append(signature)
                self._signature_version += 1
            bisect.insort(users, key)
        heapq.heappush(self._pending, key)

    def _leave(self, item: WaitingItem) -> None:
        self._feasible.discard(item.id)
        key = item.order_key
        for device_id in item.demand.device_ids:
            _remove_sorted(self._users_naming[device_id], key)
        for signature in {r.signature for r in item.demand.requests}:
            _remove_sorted(self._users_asking[signature], key)
        if key in self._pending:
            self._pending.remove(key)
            heapq.heapify(self._pending)
        self._part_counts.pop(key, None)
        for device_id in self._kept.pop(key, ()):
            del self._keeper[device_id]
            self._transit.add(device_id)

    def _signatures_usable(self, device: DeviceView) -> list[Signature]:
        cached = self._signatures_of.get(device.kind)
        if cached is not None and cached[0] == self._signature_version:
            return cached[1]
        found = [
            s
            for model in (None, device.model)
            for s in self._signatures_by_model.get(model, ())
            if s.matches(device)
        ]
        self._signatures_of[device.kind] = (self._signature_version, found)
        return found

    def _first_user(self, device_id: str, after: Key | None) -> Key | None:
        best = None
        lists = [self._users_asking[s] for s in self._signatures_usable(self._views[device_id])]
        named = self._users_naming.get(device_id)
        if named:
            lists.append(named)
        for users in lists:
            at = 0 if after is None else bisect.bisect_right(users, after)
            if at < len(users) and (best is None or users[at] < best):
                best = users[at]
        return best

    def _claim(self, item: WaitingItem) -> set[str]:
        """A new item takes, from the keepers behind it, the free devices it could use."""
        key = item.order_key
        claimed = set()
        candidates: Iterable[str] = itertools.chain(
            (d for d in item.demand.device_ids if d in self._free.every),
            *(self._free.matching(r.signature) for r in item.demand.requests),
        )
        for device_id in candidates:
            keeper = self._keeper.get(device_id)
            if keeper is None or keeper > key:
                claimed.add(device_id)
        return claimed

    def _fill(self, item: WaitingItem, kept: set[str]) -> dict[str, str | None] | None:
        demand = item.demand
        if len(kept) < demand.places or not all(d in kept for d in demand.device_ids):
            return None
        counts = self._part_counts[item.order_key]
        if any(n < request.count for n, request in zip(counts, demand.requests, strict=True)):
            return None
        named, views, wanted = set(demand.device_ids), self._views, demand.requested
        candidates = []
        for request in demand.requests:
            mine = kept.intersection(self._free.matching(request.signature))
            mine.difference_update(named)
            best = heapq.nsmallest(wanted, mine, key=lambda d: views[d].rank)
            candidates.append(best)
        return complete_filling(demand, candidates)


def _remove_sorted(keys: list[Key], key: Key) -> None:
    del keys[bisect.bisect_left(keys, key)]
