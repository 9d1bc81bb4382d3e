"""Use cases for devices: register, edit, remove, list, status override and heartbeats."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from application.errors import AlreadyExists, NotFound
from application.pagination import Page, paginate
from application.plan_ports import FirmwareSighting
from application.ports import Clock, DeviceFilter, IdGenerator, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from application.use_cases.scheduling import ScheduleWaitingRuns, after_devices_freed
from domain.devices import MANUAL_STATES, Device, DeviceStatus, StatusChange
from domain.errors import InvalidValue


def device_key(device: Device) -> tuple:
    return (device.name, device.id)


def _load(uow: UnitOfWork, device_id: str) -> Device:
    device = uow.devices.get(device_id)
    if device is None:
        raise NotFound("device", device_id)
    return device


def _load_locked(uow: UnitOfWork, device_id: str) -> Device:
    found = uow.devices.get_many_for_update([device_id])
    if not found:
        raise NotFound("device", device_id)
    return found[0]


def _ensure_name_free(uow: UnitOfWork, name: str, own_id: str | None = None) -> None:
    other = uow.devices.get_by_name(name.strip())
    if other is not None and other.id != own_id:
        raise AlreadyExists("device", "name", name.strip(), other.name, other.id)


@dataclass(frozen=True)
class RegisterDeviceRequest:
    name: str
    model: str = ""
    serial: str = ""
    firmware_version: str = ""
    location: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    offline: bool = False
    actor: str = "system"


class RegisterDevice:
    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self, request: RegisterDeviceRequest) -> Device:
        now = self.clock.now()
        device = Device(
            id=self.ids.new_id(),
            name=request.name,
            model=request.model,
            serial=request.serial,
            firmware_version=request.firmware_version,
            location=request.location,
            labels=request.labels,
            created_at=now,
            updated_at=now,
        )
        if request.offline:
            device.go_offline(now, request.actor, "registered as offline")
        with self.uow() as uow:
            _ensure_name_free(uow, device.name)
            uow.devices.add(device)
            uow.commit()
        if device.is_available:  # a run may be waiting for a device of its kind
            after_devices_freed(ScheduleWaitingRuns(self.uow, self.clock, self.ids))
        return device


class GetDevice:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, device_id: str) -> Device:
        with self.uow(read_only=True) as uow:
            return _load(uow, device_id)


class ListDevices:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(
        self, where: DeviceFilter, limit: int | None = None, cursor: str | None = None
    ) -> Page[Device]:
        with self.uow(read_only=True) as uow:
            return self.read(uow, where, limit, cursor)

    @staticmethod
    def read(
        uow: UnitOfWork, where: DeviceFilter, limit: int | None = None, cursor: str | None = None
    ) -> Page[Device]:
        """The page, read in the caller's (open) unit of work: ReadLabVersion.then_read."""
        return paginate(
            "devices",
            lambda n, after: uow.devices.list(where, n, after),
            device_key,
            limit,
            cursor,
        )


class UpdateDevice:
    def __init__(self, uow: UowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(self, device_id: str, changes: dict[str, Any]) -> Device:
        with self.uow() as uow:
            device = _load(uow, device_id)
            if "name" in changes and isinstance(changes["name"], str):
                _ensure_name_free(uow, changes["name"], own_id=device.id)
            device.update_details(self.clock.now(), **changes)
            uow.devices.update(device)
            uow.commit()
            return device


class DeleteDevice:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, device_id: str) -> None:
        with self.uow() as uow:
            device = _load_locked(uow, device_id)
            device.ensure_can_be_deleted()
            uow.devices.remove(device)
            uow.commit()


@dataclass(frozen=True)
class SetDeviceStatusRequest:
    device_id: str
    status: str
    reason: str = ""
    actor: str = "system"
    # the caller may bring a retired device back (Permission.MANAGE_DEVICES: admins)
    may_unretire: bool = False


SETTABLE_STATUSES = [s.value for s in MANUAL_STATES]


class SetDeviceStatus:
    """A person takes a device out of service (offline, maintenance, retired) or brings it
    back (available). `in_test` is never set by hand; only starting a run puts a device in
    test. On a device in test, offline and maintenance take effect when its run ends
    (maintenance so drains the device), and available cancels such a pending change."""

    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator | None = None) -> None:
        # with `ids`, a device that becomes available is booked for the queue right away
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self, request: SetDeviceStatusRequest) -> Device:
        if request.status == DeviceStatus.IN_TEST.value:
            raise InvalidValue("status", "in_test is set only by starting a test run")
        if request.status not in SETTABLE_STATUSES:
            raise InvalidValue("status", f"must be one of {', '.join(SETTABLE_STATUSES)}")
        state = MANUAL_STATES[DeviceStatus(request.status)]
        reason = request.reason.strip()
        with self.uow() as uow:
            device = _load_locked(uow, request.device_id)
            was_available = device.is_available
            device.set_service_state(
                state,
                self.clock.now(),
                request.actor,
                reason or ("" if state.requires_reason else "manual override"),
                may_unretire=request.may_unretire,
            )
            uow.devices.update(device)
            uow.commit()
        _schedule_if_freed(self, was_available, device)
        return device


class RecordHeartbeat:
    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator | None = None) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self, device_id: str, firmware_version: str | None = None) -> Device:
        with self.uow() as uow:
            device = _load_locked(uow, device_id)
            was_available, firmware_before = device.is_available, device.firmware_version
            now = self.clock.now()
            device.heartbeat(now, firmware_version)
            uow.devices.update(device)
            note_firmware_sighting(uow, device, firmware_before, now)
            uow.commit()
        _schedule_if_freed(self, was_available, device)
        return device


def note_firmware_sighting(uow: UnitOfWork, device: Device, before: str, at: datetime) -> None:
    """New firmware reported: a sighting in the same transaction, which the worker's
    new-firmware trigger takes up (application/use_cases/plans.py)."""
    sighting = FirmwareSighting.of_report(device, before, at)
    if sighting is not None:
        uow.firmware_sightings.add(sighting)


def _schedule_if_freed(use_case: Any, was_available: bool, device: Device) -> None:
    """A device that just became available may be what a waiting run waits for. The pass
    runs after the commit: it takes the queue lock before device rows (scheduling.py)."""
    if use_case.ids is not None and device.is_available and not was_available:
        after_devices_freed(ScheduleWaitingRuns(use_case.uow, use_case.clock, use_case.ids))


class GetDeviceHistory:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, device_id: str, limit: int = 100) -> list[StatusChange]:
        if not 1 <= limit <= 1000:
            raise InvalidValue("limit", "must be between 1 and 1000")
        with self.uow() as uow:
            _load(uow, device_id)
            return uow.devices.history(device_id, limit)


class MarkSilentDevicesOffline:
    """Devices that stopped sending heartbeats for longer than allowed go offline."""

    def __init__(self, uow: UowFactory, clock: Clock, max_silence_s: float) -> None:
        self.uow, self.clock, self.max_silence_s = uow, clock, max_silence_s

    def __call__(self, batch: int = 500) -> list[str]:
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.max_silence_s)
        with self.uow() as uow:
            candidates = [d.id for d in uow.devices.list_silent(cutoff, batch)]
            marked = []
            for device in uow.devices.get_many_for_update(candidates):
                # re-check under the lock: a heartbeat may have arrived meanwhile
                if device.is_silent(now, self.max_silence_s) and device.fall_silent(
                    now, "heartbeat monitor", f"no heartbeat for {self.max_silence_s:g} s"
                ):
                    uow.devices.update(device)
                    marked.append(device.id)
            uow.commit()
        return marked
