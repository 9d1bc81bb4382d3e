"""Device: a meter or dongle on the lab bench, and the rules of its status."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from domain.editing import apply_edit
from domain.errors import InvalidTransition, InvalidValue
from domain.names import check_text, clean_name, name_key


class DeviceStatus(enum.StrEnum):
    AVAILABLE = "available"
    IN_TEST = "in_test"
    OFFLINE = "offline"


@dataclass(frozen=True)
class StatusChange:
    """One line of a device's status history."""

    at: datetime
    from_status: DeviceStatus
    to_status: DeviceStatus
    actor: str
    reason: str = ""
    run_id: str | None = None


@dataclass(eq=False)
class Device:
    """A device's status is derived from two facts: which run holds it and whether it is
    marked offline. Keeping them apart lets a device that drops off the network during a
    test stay held by that run, and only show as offline once the run lets it go."""

    id: str
    name: str
    model: str = ""
    serial: str = ""
    firmware_version: str = ""
    location: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    held_by: str | None = None
    marked_offline: bool = False
    last_seen_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0
    # Changes made since the device was loaded; the repository persists and clears them.
    new_history: list[StatusChange] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.name = clean_name(self.name)
        self.labels = {str(k): str(v) for k, v in (self.labels or {}).items()}
        for key, value in self.labels.items():
            if not key.strip():
                raise InvalidValue("labels", "label keys must not be empty")
            check_text("labels", key, "label keys ")
            check_text("labels", value, f"the value of label {key!r} ")

    @property
    def name_key(self) -> str:
        return name_key(self.name)

    @property
    def status(self) -> DeviceStatus:
        if self.held_by is not None:
            return DeviceStatus.IN_TEST
        if self.marked_offline:
            return DeviceStatus.OFFLINE
        return DeviceStatus.AVAILABLE

    @property
    def is_available(self) -> bool:
        return self.status is DeviceStatus.AVAILABLE

    def _record(
        self, before: DeviceStatus, at: datetime, actor: str, reason: str, run_id: str | None
    ) -> None:
        after = self.status
        if after is not before:
            self.new_history.append(StatusChange(at, before, after, actor, reason, run_id))
        self.updated_at = at

    def reserve(self, run_id: str, at: datetime, actor: str) -> None:
        if self.held_by == run_id:
            return
        if not self.is_available:
            raise InvalidTransition(
                f"device {self.name} is {self.status.value} and cannot be reserved"
            )
        before = self.status
        self.held_by = run_id
        self._record(before, at, actor, "reserved for test run", run_id)

    def release(self, run_id: str, at: datetime, actor: str, reason: str = "") -> bool:
        """Let go of the device; only the run that holds it may do so. Returns whether the
        device was held by that run (False means it was already released: nothing changes)."""
        if self.held_by is None:
            return False
        if self.held_by != run_id:
            raise InvalidTransition(
                f"device {self.name} is held by run {self.held_by}, not by run {run_id}"
            )
        before = self.status
        self.held_by = None
        self._record(before, at, actor, reason or "released by test run", run_id)
        return True

    def go_offline(self, at: datetime, actor: str, reason: str) -> None:
        before = self.status
        self.marked_offline = True
        self._record(before, at, actor, reason, self.held_by)

    def come_online(self, at: datetime, actor: str, reason: str) -> None:
        before = self.status
        self.marked_offline = False
        self._record(before, at, actor, reason, self.held_by)

    def heartbeat(self, at: datetime, firmware_version: str | None = None) -> None:
        """The device reported in: it is seen, and if it was offline it is back."""
        self.last_seen_at = at
        if firmware_version:
            self.firmware_version = firmware_version
        if self.marked_offline:
            self.come_online(at, "heartbeat", "device reported in")
        else:
            self.updated_at = at

    def is_silent(self, now: datetime, max_silence_s: float) -> bool:
        """True when the device has reported before but not within the allowed silence."""
        if self.last_seen_at is None:
            return False
        return (now - self.last_seen_at).total_seconds() > max_silence_s

    def update_details(self, at: datetime, **details: object) -> None:
        allowed = {"name", "model", "serial", "firmware_version", "location", "labels"}
        unknown = set(details) - allowed
        if unknown:
            raise InvalidValue(sorted(unknown)[0], "cannot be changed")
        apply_edit(self, details, self.__post_init__)
        self.updated_at = at

    def ensure_can_be_deleted(self) -> None:
        if self.held_by is not None:
            raise InvalidTransition(
                f"device {self.name} is in test run {self.held_by}; cancel or finish the run first"
            )
