"""Finding the devices that match a request part without looking at every device: devices are
bucketed by model and by each label (key, value), and a part is matched against its smallest
bucket only. Results are cached by signature, since many waiting items ask for the same kind."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping

from domain.scheduling.matching import short_groups
from domain.scheduling.model import (
    Demand,
    DeviceState,
    DeviceView,
    Feasibility,
    Shortfall,
    Signature,
    by_id,
)


class Catalog:
    """Devices (given best first) bucketed for matching. Read-only once built: a pass builds
    one for the bookable devices and one for all devices that are not retired."""

    def __init__(self, devices: Iterable[DeviceView]) -> None:
        self.views: dict[str, DeviceView] = {}
        self.every: set[str] = set()
        self.by_model: dict[str, set[str]] = {}
        self.by_label: dict[tuple[str, str], set[str]] = {}
        self._place: dict[str, int] = {}
        for device in devices:
            self._place[device.id] = len(self.views)
            self.views[device.id] = device
            self.every.add(device.id)
            self.by_model.setdefault(device.model, set()).add(device.id)
            for pair in device.labels.items():
                self.by_label.setdefault(pair, set()).add(device.id)
        self._matching: dict[Signature, list[str]] = {}

    def matching(self, signature: Signature) -> list[str]:
        """Every device matching the signature, best first."""
        found = self._matching.get(signature)
        if found is None:
            buckets = [self.every]
            if signature.model is not None:
                buckets.append(self.by_model.get(signature.model, _NONE))
            buckets += [self.by_label.get(pair, _NONE) for pair in signature.labels]
            buckets.sort(key=len)
            found = sorted(buckets[0].intersection(*buckets[1:]), key=self._place.__getitem__)
            self._matching[signature] = found
        return found


_NONE: frozenset[str] = frozenset()


def shortfalls(
    demand: Demand,
    device: Callable[[str], DeviceView | None],
    matching: Callable[[Signature], Collection[str]],
    count: Callable[[Signature], int] | None = None,
) -> tuple[Shortfall, ...]:
    """Why no assignment could ever satisfy the demand (empty if one could). `device` looks
    a device up by id; `matching` gives the ids of the devices, not retired, that match a
    signature, and `count` (if given) how many there are, so plentiful kinds are never listed."""
    problems = []
    for device_id in demand.device_ids:
        view = device(device_id)
        if view is None or view.state is DeviceState.RETIRED:
            reason = "unknown" if view is None else "retired"
            problems.append(Shortfall(reason, 1, 0, device_id=device_id))
    if not demand.requests:
        return tuple(problems)
    need = demand.places
    counted = count or (lambda signature: len(matching(signature)))
    if all(counted(request.signature) >= need for request in demand.requests):
        # each part has more candidates than the demand has places: Hall's condition holds
        return tuple(problems)
    lists = [matching(request.signature) for request in demand.requests]
    named = set(demand.device_ids)
    wanted = demand.requested
    candidates = [
        [d for d in heapq.nsmallest(wanted + len(named), found) if d not in named][:wanted]
        for found in lists
    ]
    for parts, needed, matched in short_groups(demand, candidates):
        problems.append(Shortfall("not enough matching devices", needed, matched, parts=parts))
    return tuple(problems)


def feasible(
    demand: Demand, devices: Iterable[DeviceView] | Mapping[str, DeviceView]
) -> Feasibility:
    """Could any assignment ever satisfy the demand from the devices that are not retired?
    The answer names each named device that is unknown or retired, and each group of request
    parts that together need more devices than match them: what a 422 should say."""
    views = devices if isinstance(devices, Mapping) else by_id(devices)
    lab = Catalog(
        sorted(
            (d for d in views.values() if d.state is not DeviceState.RETIRED),
            key=lambda d: d.rank,
        )
    )
    return Feasibility(shortfalls(demand, views.get, lab.matching))
