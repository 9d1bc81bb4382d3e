"""Booking devices for a run or a hold: all of them or none, and letting them go when it
ends."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from domain.devices import Device
from domain.errors import DeviceUnavailable
from domain.holds import HeldDevice, Hold
from domain.test_runs import RunStatus, TestRun


def _refuse_unavailable(holder_id: str, devices: list[Device], health_check: bool = False) -> None:
    refused = [d for d in devices if not d.bookable_for(health_check) and d.held_by != holder_id]
    if refused:
        raise DeviceUnavailable(
            {d.id: "bad" if d.is_available else d.status.value for d in refused},
            {d.id: d.name for d in refused},
        )


def reserve_devices(run: TestRun, devices: Iterable[Device], at: datetime, actor: str) -> None:
    devices = list(devices)
    health_check = run.is_health_check
    _refuse_unavailable(run.id, devices, health_check)
    for device in devices:
        device.reserve(run.id, at, actor, health_check=health_check)


def hold_devices(
    hold: Hold, devices: Iterable[Device], roles: dict[str, str | None], at: datetime
) -> None:
    """Give the waiting hold every one of `devices` (with the role each fills) and make it
    active; raises DeviceUnavailable, changing nothing, if any of them is not free."""
    devices = list(devices)
    _refuse_unavailable(hold.id, devices)
    hold.assign([HeldDevice(d.id, d.name, d.model, roles.get(d.id)) for d in devices], at)
    for device in devices:
        device.hold_for(hold.note, at, hold.holder)


def release_held_devices(
    hold: Hold, devices: Iterable[Device], at: datetime, actor: str
) -> list[str]:
    """Let go of every device the ended hold still has; returns their ids. Safe to repeat."""
    reason = f"hold {hold.end_reason}"
    return [d.id for d in devices if d.held_by == hold.id and d.release(hold.id, at, actor, reason)]


def release_devices_of(
    run: TestRun, devices: Iterable[Device], at: datetime, actor: str
) -> list[str]:
    """Release every device the finished run still holds; returns the ids released.
    Devices already released (or never held) are left alone, so this is safe to repeat.
    A released device hears how the run went: a completed health check sets its health (a
    health check that failed on the runner's side or was cancelled judged nothing and leaves
    it as it was), any other run counts towards its next health check (`every_runs`)."""
    reason = f"run {run.status.value}"
    released = []
    for device in devices:
        if device.held_by == run.id and device.release(run.id, at, actor, reason):
            released.append(device.id)
            if not run.is_health_check:
                device.run_finished(at)
            elif run.status is RunStatus.COMPLETED and run.verdict is not None:
                device.record_health_check(run.id, run.verdict.value, at)
    return released
