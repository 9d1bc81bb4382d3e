"""Telemetry from the devices themselves (MeterLab US-010 / US-012).

A device that reports telemetry is alive: its report counts as a heartbeat (last seen, and the
firmware it runs when it says so), which is what keeps it out of the offline rule. With
discovery on, a device devicelab does not know yet registers itself by reporting."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from application.errors import AlreadyExists
from application.ports import Clock, IdGenerator
from application.ports import UnitOfWorkFactory as UowFactory
from application.use_cases.devices import note_firmware_sighting
from domain.devices import Device

# every device that registered itself carries this label, so the lab can find and review them
DISCOVERED_LABEL = ("discovered", "telemetry")


@dataclass(frozen=True)
class TelemetryReport:
    """What one telemetry message says about its device. The details other than the name and
    firmware are used only when the device registers itself."""

    device_name: str
    firmware_version: str | None = None
    model: str = ""
    serial: str = ""
    location: str = ""
    labels: dict[str, str] = field(default_factory=dict)


class TelemetryOutcome(enum.StrEnum):
    REGISTERED = "registered"  # unknown device, discovery on: it is in the lab now
    HEARTBEAT = "heartbeat"  # known device: last seen (and firmware) recorded
    THROTTLED = "throttled"  # known device, seen moments ago and nothing new: not written
    UNKNOWN = "unknown"  # unknown device, discovery off: ignored


@dataclass(frozen=True)
class TelemetryRecorded:
    outcome: TelemetryOutcome
    device: Device | None = None


class RecordTelemetry:
    """One report, one transaction. `min_interval_s` spares the database a write for devices
    that report every second: a report within that interval of the last recorded one changes
    nothing unless it brings a new firmware version or the device is offline by silence (which
    the report ends). A state a person set (offline, maintenance, retired) stays as it is:
    telemetry records that the device is seen, never that it is back in service."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        ids: IdGenerator,
        discovery: bool,
        min_interval_s: float = 0,
    ) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids
        self.discovery, self.min_interval_s = discovery, min_interval_s

    def __call__(self, report: TelemetryReport) -> TelemetryRecorded:
        try:
            return self._record(report)
        except AlreadyExists:
            # another listener registered the same device a moment ago: it is known now
            return self._record(report)

    def _record(self, report: TelemetryReport) -> TelemetryRecorded:
        now = self.clock.now()
        firmware = (report.firmware_version or "").strip() or None
        with self.uow() as uow:
            known = uow.devices.get_by_name(report.device_name.strip())
            if known is None:
                if not self.discovery:
                    return TelemetryRecorded(TelemetryOutcome.UNKNOWN)
                device = Device(
                    id=self.ids.new_id(),
                    name=report.device_name,
                    model=report.model,
                    serial=report.serial,
                    firmware_version=firmware or "",
                    location=report.location,
                    labels={**report.labels, DISCOVERED_LABEL[0]: DISCOVERED_LABEL[1]},
                    created_at=now,
                    updated_at=now,
                )
                device.heartbeat(now)
                uow.devices.add(device)
                note_firmware_sighting(uow, device, "", now)
                uow.commit()
                return TelemetryRecorded(TelemetryOutcome.REGISTERED, device)
            if self._nothing_new(known, firmware, now):
                return TelemetryRecorded(TelemetryOutcome.THROTTLED, known)
            locked = uow.devices.get_many_for_update([known.id])
            if not locked:  # deleted a moment ago; with discovery it returns with its next report
                return TelemetryRecorded(TelemetryOutcome.UNKNOWN)
            device = locked[0]
            firmware_before = device.firmware_version
            device.heartbeat(now, firmware)
            uow.devices.update(device)
            note_firmware_sighting(uow, device, firmware_before, now)
            uow.commit()
            return TelemetryRecorded(TelemetryOutcome.HEARTBEAT, device)

    def _nothing_new(self, device: Device, firmware: str | None, now: datetime) -> bool:
        if device.last_seen_at is None or device.revived_by_heartbeat:
            return False
        if firmware is not None and firmware != device.firmware_version:
            return False
        return now - device.last_seen_at < timedelta(seconds=self.min_interval_s)
