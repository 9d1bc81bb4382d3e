"""What a run or a hold must pass to enter the queue, and why one cannot start now.

StartTestRun and PlaceHold share these: the same devices are refused the same way (422 for
what can never be, 409 with `when_busy="reject"` for what cannot be now)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from application.ports import UnitOfWork
from application.use_cases.scheduling import devices_for, queue_of
from domain.devices import Device
from domain.errors import DeviceUnavailable, InvalidValue
from domain.queueing import device_view
from domain.scheduling import Demand, DeviceRequest, feasible

WHEN_BUSY = ("queue", "reject")


def check_request(
    device_ids: Sequence[str], device_requests: Sequence[DeviceRequest], when_busy: str, what: str
) -> None:
    """The checks that need no database: `what` is "a run" or "a hold"."""
    if len(set(device_ids)) != len(device_ids):
        raise InvalidValue("device_ids", "each device may appear only once")
    if when_busy not in WHEN_BUSY:
        raise InvalidValue("when_busy", "must be queue or reject")
    if not device_ids and not device_requests:
        raise InvalidValue("device_ids", f"{what} needs at least one device")


def lock_named_devices(uow: UnitOfWork, device_ids: Sequence[str]) -> list[Device]:
    """The named devices, locked; refuses unknown ones. Call it after the queue lock (see
    application/use_cases/scheduling.py for the lock order)."""
    named = uow.devices.get_many_for_update(device_ids)
    found = {d.id for d in named}
    unknown = [i for i in device_ids if i not in found]
    if unknown:
        raise InvalidValue("device_ids", f"unknown device(s): {', '.join(unknown)}")
    return named


def refuse_unsatisfiable(uow: UnitOfWork, demand: Demand, named: list[Device]) -> None:
    """422 at once for a demand no device of the lab could ever satisfy (retired devices
    do not count; busy, offline and maintenance ones may come back). `named`: the demand's
    named devices as lock_named_devices found them, all a demand without parts can use."""
    devices = devices_for(uow, [demand]) if demand.requests else named
    verdict = feasible(demand, [device_view(d) for d in devices])
    if not verdict.ok:
        field_name = "device_ids" if verdict.problems[0].device_id else "device_requests"
        raise InvalidValue(
            field_name,
            "cannot be satisfied by this lab: "
            + "; ".join(p.describe(demand) for p in verdict.problems),
        )


def why_not_now(item_id: str, uow: UnitOfWork, now: datetime) -> DeviceUnavailable:
    """The 409 of `when_busy="reject"`: the devices the run or hold could not have now, each
    with its status, or with "kept for an earlier item" when an item waiting before it has
    the first claim."""
    runs, holds = uow.test_runs.list_waiting(), uow.holds.list_waiting()
    devices = devices_for(uow, [item.demand for item in (*runs, *holds)])
    by_id = {d.id: d for d in devices}
    unavailable: dict[str, str] = {}
    queue = queue_of(runs, devices, now, holds)
    entry = next((e for e in queue if e.id == item_id), None)
    if entry is not None and entry.waiting_for is not None:
        for device_id, reason in entry.waiting_for.devices.items():
            device = by_id.get(device_id)
            busy = device is not None and not device.is_available
            unavailable[device_id] = device.status.value if busy else reason
        for part in entry.waiting_for.parts:
            for device in devices:
                if part.request.signature.matches(device_view(device)):
                    if not device.is_available:
                        unavailable.setdefault(device.id, device.status.value)
                    elif part.kept_for_earlier:
                        unavailable.setdefault(device.id, "kept for an earlier item")
    return DeviceUnavailable(unavailable, {i: by_id[i].name for i in unavailable if i in by_id})
