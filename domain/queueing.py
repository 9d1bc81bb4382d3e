"""Waiting runs and holds and the lab's devices as the scheduler (domain.scheduling) sees
them, and booking what it decides: all of a run's (or hold's) devices at once, or none."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from domain.booking import hold_devices, reserve_devices
from domain.devices import Device
from domain.errors import DeviceUnavailable
from domain.holds import Hold
from domain.scheduling import DeviceState, DeviceView, ItemKind, WaitingItem
from domain.test_runs import DeviceSnapshot, TestRun

# A device's status as booking reads it. Keyed by the status text, so a status this map does
# not know (one added later) counts as "may come back", never as bookable.
_STATE_OF_STATUS = {
    "available": DeviceState.BOOKABLE,
    "in_test": DeviceState.BUSY,
    "held": DeviceState.BUSY,
    "offline": DeviceState.OFFLINE,
    "maintenance": DeviceState.MAINTENANCE,
    "retired": DeviceState.RETIRED,
}


def device_view(device: Device) -> DeviceView:
    state = DeviceState.BOOKABLE if device.is_available else DeviceState.OFFLINE
    if not device.is_available:
        state = _STATE_OF_STATUS.get(device.status.value, DeviceState.OFFLINE)
    return DeviceView(
        id=device.id,
        model=device.model,
        labels=dict(device.labels),
        last_seen_at=device.last_seen_at,
        state=state,
        health_checks_only=device.is_bad,
    )


def waiting_item(run: TestRun) -> WaitingItem:
    timeout_s = None
    if run.queue_timeout_at is not None:
        timeout_s = max(0.0, (run.queue_timeout_at - run.created_at).total_seconds())
    return WaitingItem(
        id=run.id,
        kind=ItemKind.RUN,
        priority=run.priority,
        submitted_at=run.created_at,
        demand=run.demand,
        expected_duration_s=float(sum(c.duration_s or 0 for c in run.test_cases)),
        queue_timeout_s=timeout_s,
        health_check=run.is_health_check,
    )


def hold_item(hold: Hold) -> WaitingItem:
    """A waiting hold in the same queue as runs; it keeps its devices for its duration."""
    timeout_s = None
    if hold.queue_timeout_at is not None:
        timeout_s = max(0.0, (hold.queue_timeout_at - hold.created_at).total_seconds())
    return WaitingItem(
        id=hold.id,
        kind=ItemKind.HOLD,
        priority=hold.priority,
        submitted_at=hold.created_at,
        demand=hold.demand,
        expected_duration_s=float(hold.duration_s),
        queue_timeout_s=timeout_s,
    )


def snapshot(device: Device, role: str | None = None) -> DeviceSnapshot:
    return DeviceSnapshot(
        device.id,
        device.name,
        device.model,
        device.serial,
        device.firmware_version,
        dict(device.labels),
        role,
    )


def _chosen(roles: Mapping[str, str | None], devices: Iterable[Device]) -> list[Device]:
    by_id = {d.id: d for d in devices}
    gone = {i: "deleted" for i in roles if i not in by_id}
    if gone:
        raise DeviceUnavailable(gone)
    return [by_id[i] for i in roles]


def book(
    run: TestRun,
    roles: Mapping[str, str | None],
    devices: Iterable[Device],
    at: datetime,
    actor: str,
) -> list[Device]:
    """Reserve every device of the assignment (device id -> role) for the waiting run and
    queue it. Raises DeviceUnavailable, reserving nothing, if any of them is not free (or
    was deleted since the pass read it)."""
    chosen = _chosen(roles, devices)
    reserve_devices(run, chosen, at, actor)
    run.assign([snapshot(d, roles[d.id]) for d in chosen], at)
    return chosen


def book_hold(
    hold: Hold, roles: Mapping[str, str | None], devices: Iterable[Device], at: datetime
) -> list[Device]:
    """Give the waiting hold every device of the assignment (device id -> role) at once and
    make it active. Raises DeviceUnavailable, booking nothing, if any of them is not free
    (or was deleted since the pass read it)."""
    chosen = _chosen(roles, devices)
    hold_devices(hold, chosen, dict(roles), at)
    return chosen
