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
        self.every: list[str] = []
        self.by_model: dict[str, list[str]] = {}
        self.by_label: dict[tuple[str, str], list[str]] = {}
        self.views: dict[str, DeviceView] = {}
        for device in devices:
            self.views[device.id] = device
            self.every.append(device.id)
            self.by_model.setdefault(device.model, []).append(device.id)
            for pair in device.labels.items():
                self.by_label.setdefault(pair, []).append(device.id)
        self._matching: dict[Signature, list[str]] = {}

    def matching(self, signature: Signature) -> list[str]:
        """Every device matching the signature, best first."""
        found = self._matching.get(signature)
        if found is None:
            bucket = self.every
            if signature.model is not None:
                bucket = self.by_model.get(signature.model, [])
            for pair in signature.labels:
                other = self.by_label.get(pair, [])
                if len(other) < len(bucket):
                    bucket = other
            views = self.views
            found = [d for d in bucket if signature.matches(views[d])]
            self._matching[signature] = found
        return found


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
