"""When will a waiting item start? By playing the queue forward: busy devices free up at the
time the caller expects (the remaining time of the run or hold that has them), the scheduler
runs at each such moment exactly as it will for real, and each item it starts keeps its devices
for its own expected duration. Using the real scheduler (not a rougher model of it) means the
estimate follows every rule of the queue: order, no overtaking, backfill, device choice."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from domain.scheduling.incremental import LabScheduler
from domain.scheduling.model import DeviceState, DeviceView, WaitingItem, by_id, for_booking


def estimate_starts(
    waiting: Iterable[WaitingItem],
    devices: Iterable[DeviceView],
    now: datetime,
    expected_free_at: Mapping[str, datetime] | None = None,
) -> dict[str, datetime | None]:
    """The estimated start of every waiting item; None when it cannot be told: the item waits
    for a device in maintenance or offline, for a busy device or an item whose end is not
    known, can never be satisfied, or would time out first. `expected_free_at` overrides the
    devices' own `busy_until`; an end already past counts as now."""
    waiting = list(waiting)
    views = by_id(for_booking(waiting, devices, now))
    expected = dict(expected_free_at or {})
    durations = {item.id: item.expected_duration_s for item in waiting}
    lab = LabScheduler(views.values(), waiting)
    starts: dict[str, datetime | None] = dict.fromkeys(durations)
    frees: list[tuple[datetime, str]] = []
    for view in views.values():
        if view.state is DeviceState.BUSY:
            until = expected.get(view.id, view.busy_until)
            if until is not None:
                frees.append((max(until, now), view.id))
    heapq.heapify(frees)
    moment = now
    while True:
        for assignment in lab.run(moment):
            starts[assignment.item_id] = moment
            duration = durations[assignment.item_id]
            if duration is not None:
                ends = moment + timedelta(seconds=duration)
                for device_id in assignment.devices:
                    heapq.heappush(frees, (ends, device_id))
        if not frees or not lab.waiting():
            return starts
        moment = frees[0][0]
        while frees and frees[0][0] == moment:
            device_id = heapq.heappop(frees)[1]
            device = lab.device(device_id)
            # a bad device coming free from its health check is counted out of service:
            # whether the check passes cannot be told beforehand
            state = DeviceState.MAINTENANCE if device.health_checks_only else DeviceState.BOOKABLE
            lab.set_device(replace(device, state=state, busy_until=None))
