"""Booking devices for a run: all of them or none, and letting them go when it ends."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from domain.devices import Device
from domain.errors import DeviceUnavailable
from domain.test_runs import TestRun


def reserve_devices(run: TestRun, devices: Iterable[Device], at: datetime, actor: str) -> None:
    devices = list(devices)
    refused = [d for d in devices if not d.is_available and d.held_by != run.id]
    if refused:
        raise DeviceUnavailable(
            {d.id: d.status.value for d in refused}, {d.id: d.name for d in refused}
        )
    for device in devices:
        device.reserve(run.id, at, actor)


def release_devices_of(
    run: TestRun, devices: Iterable[Device], at: datetime, actor: str
) -> list[str]:
    """Release every device the finished run still holds; returns the ids released.
    Devices already released (or never held) are left alone, so this is safe to repeat."""
    reason = f"run {run.status.value}"
    return [d.id for d in devices if d.held_by == run.id and d.release(run.id, at, actor, reason)]
