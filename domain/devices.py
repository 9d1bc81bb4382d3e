"""Device: a meter or dongle on the lab bench, and the rules of its status."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.editing import apply_edit
from domain.errors import InvalidTransition, InvalidValue
from domain.health import FAILING_VERDICTS, DeviceHealth, HealthNote
from domain.holds import HoldNote
from domain.names import check_labels, clean_name, name_key


class DeviceStatus(enum.StrEnum):
    AVAILABLE = "available"
    IN_TEST = "in_test"
    HELD = "held"  # kept by a hold for manual work
    OFFLINE = "offline"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class ServiceState(enum.StrEnum):
    """Whether the device is in service, and if not, why. Only the heartbeat monitor makes a
    device `silent`, and only a heartbeat ends that; the other states are set by a person and
    stay until a person changes them (a heartbeat changes nothing about them)."""

    IN_SERVICE = "in_service"
    SILENT = "silent"  # offline because it stopped reporting
    OFFLINE = "offline"  # set offline by hand
    MAINTENANCE = "maintenance"
    RETIRED = "retired"  # out of the lab for good; only an admin brings it back

    @property
    def status(self) -> DeviceStatus:
        """What a device in this state shows when no run holds it."""
        return _STATUS_OF[self]

    @property
    def requires_reason(self) -> bool:
        """Maintenance and retirement say why, so the next engineer at the bench knows."""
        return self in (ServiceState.MAINTENANCE, ServiceState.RETIRED)


_STATUS_OF = {
    ServiceState.IN_SERVICE: DeviceStatus.AVAILABLE,
    ServiceState.SILENT: DeviceStatus.OFFLINE,
    ServiceState.OFFLINE: DeviceStatus.OFFLINE,
    ServiceState.MAINTENANCE: DeviceStatus.MAINTENANCE,
    ServiceState.RETIRED: DeviceStatus.RETIRED,
}

# the states a person sets by hand, by the status they give the device
MANUAL_STATES = {
    DeviceStatus.AVAILABLE: ServiceState.IN_SERVICE,
    DeviceStatus.OFFLINE: ServiceState.OFFLINE,
    DeviceStatus.MAINTENANCE: ServiceState.MAINTENANCE,
    DeviceStatus.RETIRED: ServiceState.RETIRED,
}


@dataclass(frozen=True)
class ServiceNote:
    """Who took the device out of service, why and since when."""

    by: str
    reason: str
    since: datetime


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
    """A device's status is derived from two facts: which run or hold has it (`held_by`, one
    column for both, so a device is never booked twice; `hold` says who holds it and until
    when when it is a hold) and its service state. Keeping them apart lets a device that drops off the network during a test stay
    held by that run, and only show as offline once the run lets it go; in the same way a
    device put into maintenance during a run is drained: it finishes the run, then shows as
    in maintenance instead of becoming available."""

    id: str
    name: str
    model: str = ""
    serial: str = ""
    firmware_version: str = ""
    location: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    held_by: str | None = None
    hold: HoldNote | None = None  # set while a hold (not a run) has the device
    service_state: ServiceState = ServiceState.IN_SERVICE
    # who set the service state, why and when; None while the device is in service
    service_note: ServiceNote | None = None
    last_seen_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0
    # what the health checks say (domain.health), and what makes the next one due: when the
    # last one was started, how many other runs the device finished since, and whether it
    # came back into service (from maintenance or offline) since
    health: DeviceHealth = DeviceHealth.UNKNOWN
    health_note: HealthNote | None = None
    health_checked_at: datetime | None = None
    runs_since_health_check: int = 0
    health_check_owed: bool = False
    # Changes made since the device was loaded; the repository persists and clears them.
    new_history: list[StatusChange] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.name = clean_name(self.name)
        self.labels = {str(k): str(v) for k, v in (self.labels or {}).items()}
        check_labels(self.labels)

    @classmethod
    def restored(cls, **fields: Any) -> Device:
        """A device as it was stored, without checking its name and labels again: they
        were checked when it was made or changed (the checks above), and the lists load
        thousands of devices a second. Only for what a repository reads back."""
        device = cls.__new__(cls)
        device.__dict__.update(new_history=[], **fields)
        return device

    @property
    def name_key(self) -> str:
        return name_key(self.name)

    @property
    def status(self) -> DeviceStatus:
        if self.held_by is not None:
            return DeviceStatus.HELD if self.hold is not None else DeviceStatus.IN_TEST
        return self.service_state.status

    @property
    def is_available(self) -> bool:
        return self.status is DeviceStatus.AVAILABLE

    @property
    def is_bad(self) -> bool:
        return self.health is DeviceHealth.BAD

    def bookable_for(self, health_check: bool) -> bool:
        """Whether a run may book it now: available, and, unless the run is its health
        check, not bad (a bad device is out of booking like one in maintenance)."""
        return self.is_available and (health_check or not self.is_bad)

    @property
    def offline_pending(self) -> bool:
        """Offline (by hand or by silence) while a run holds it: offline once the run ends."""
        return self.held_by is not None and self.service_state.status is DeviceStatus.OFFLINE

    @property
    def drain_pending(self) -> bool:
        """Set to maintenance while a run holds it: in maintenance once the run ends."""
        return self.held_by is not None and self.service_state is ServiceState.MAINTENANCE

    @property
    def revived_by_heartbeat(self) -> bool:
        """Whether a heartbeat now would change the device's state."""
        return self.service_state is ServiceState.SILENT

    def _record(
        self, before: DeviceStatus, at: datetime, actor: str, reason: str, run_id: str | None
    ) -> None:
        after = self.status
        if after is not before:
            self.new_history.append(StatusChange(at, before, after, actor, reason, run_id))
        self.updated_at = at

    def reserve(self, run_id: str, at: datetime, actor: str, *, health_check: bool = False) -> None:
        if self.held_by != run_id and self.is_bad and not health_check:
            raise InvalidTransition(f"device {self.name} is bad; only its health check may book it")
        self._take(run_id, None, at, actor, "reserved for test run")

    def hold_for(self, note: HoldNote, at: datetime, actor: str) -> None:
        """A hold gets the device for manual work (same exclusivity as a run); never a bad
        one."""
        if self.held_by != note.hold_id and self.is_bad:
            raise InvalidTransition(f"device {self.name} is bad and cannot be held")
        self._take(note.hold_id, note, at, actor, f"held by {note.holder}: {note.reason}")

    def _take(
        self, holder_id: str, note: HoldNote | None, at: datetime, actor: str, reason: str
    ) -> None:
        if self.held_by == holder_id:
            return
        if not self.is_available:
            raise InvalidTransition(
                f"device {self.name} is {self.status.value} and cannot be reserved"
            )
        before = self.status
        self.held_by, self.hold = holder_id, note
        self._record(before, at, actor, reason, holder_id)

    def extend_hold(self, note: HoldNote, at: datetime) -> None:
        """The hold that has the device now ends later."""
        if self.held_by != note.hold_id:
            raise InvalidTransition(f"device {self.name} is not held by hold {note.hold_id}")
        self.hold = note
        self.updated_at = at

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
        self.held_by, self.hold = None, None
        self._record(before, at, actor, reason or "released by test run", run_id)
        return True

    def _enter(
        self, state: ServiceState, at: datetime, actor: str, reason: str, record_reason: str
    ) -> None:
        before = self.status
        if state is ServiceState.IN_SERVICE and self.service_state is not ServiceState.IN_SERVICE:
            self.health_check_owed = True  # back from maintenance or offline: check it first
        self.service_state = state
        self.service_note = (
            None if state is ServiceState.IN_SERVICE else ServiceNote(actor, reason, at)
        )
        self._record(before, at, actor, record_reason, self.held_by)

    def set_service_state(
        self,
        state: ServiceState,
        at: datetime,
        actor: str,
        reason: str,
        *,
        may_unretire: bool = False,
    ) -> None:
        """A person takes the device out of service (offline, maintenance, retired) or puts
        it back (in service). On a device in test this takes effect when its run ends: offline
        or maintenance (a drain) then, or available again when a pending change is cancelled.
        A device in test is not retired: drain it first. Leaving `retired` needs
        `may_unretire` (admins): retiring is how a device leaves the lab while its history
        stays."""
        if state is ServiceState.SILENT:
            raise InvalidValue("status", "silence is detected from heartbeats, not set by hand")
        if state is self.service_state:
            note = self.service_note
            if note is not None and reason and reason != note.reason:
                # the same state again with a new reason: recorded, the time it began is kept
                self.service_note = ServiceNote(actor, reason, note.since)
                self.updated_at = at
            return
        if self.service_state is ServiceState.RETIRED and not may_unretire:
            raise InvalidTransition(
                f"device {self.name} is retired; only an admin may bring it back"
            )
        if state is ServiceState.RETIRED and self.held_by is not None:
            raise InvalidTransition(
                f"device {self.name} is {self._holder_text}; set it to maintenance "
                "(it goes there when that ends), then retire it"
            )
        if state.requires_reason and not reason.strip():
            raise InvalidValue("reason", f"say why the device goes to {state.value}")
        self._enter(state, at, actor, reason, reason)

    def go_offline(self, at: datetime, actor: str, reason: str) -> None:
        """Set offline by hand: sticky until a person sets the device available."""
        self.set_service_state(ServiceState.OFFLINE, at, actor, reason)

    def come_online(self, at: datetime, actor: str, reason: str) -> None:
        self.set_service_state(ServiceState.IN_SERVICE, at, actor, reason)

    def fall_silent(self, at: datetime, actor: str, reason: str) -> bool:
        """The heartbeat monitor found the device silent. Only a device in service goes
        offline by silence; one a person took out of service stays as it is. Returns whether
        the device changed."""
        if self.service_state is not ServiceState.IN_SERVICE:
            return False
        self._enter(ServiceState.SILENT, at, actor, reason, reason)
        return True

    def heartbeat(self, at: datetime, firmware_version: str | None = None) -> None:
        """The device reported in: it is seen, and if it was offline by silence it is back.
        A state set by a person (offline, maintenance, retired) stays: only a person ends it."""
        self.last_seen_at = at
        if firmware_version:
            self.firmware_version = firmware_version
        if self.service_state is ServiceState.SILENT:
            self._enter(ServiceState.IN_SERVICE, at, "heartbeat", "", "device reported in")
        else:
            self.updated_at = at

    # -- health -------------------------------------------------------------------------

    def health_check_started(self, at: datetime) -> None:
        """A health-check run was made for the device: what made it due starts over."""
        self.health_checked_at = at
        self.runs_since_health_check = 0
        self.health_check_owed = False
        self.updated_at = at

    def run_finished(self, at: datetime) -> None:
        """Another (not a health-check) run on the device ended: counts for `every_runs`."""
        self.runs_since_health_check += 1
        self.updated_at = at

    def record_health_check(self, run_id: str, verdict: str, at: datetime) -> bool:
        """The device's health-check run completed with `verdict`: a pass makes it good, a
        fail or inconclusive bad. Returns whether the device went bad now (it was not)."""
        was_bad = self.is_bad
        if verdict in FAILING_VERDICTS:
            self.health = DeviceHealth.BAD
            reason = f"health check run {run_id} ended {verdict}"
        else:
            self.health = DeviceHealth.GOOD
            reason = f"health check run {run_id} passed"
        self.health_note = HealthNote(run_id, reason, "health-check", at)
        self.updated_at = at
        return self.is_bad and not was_bad

    def clear_health(self, at: datetime, actor: str, reason: str) -> None:
        """An engineer looked at the bad device and puts it back into booking. Its health is
        unknown until the next health check says otherwise."""
        if not self.is_bad:
            raise InvalidTransition(f"device {self.name} is {self.health.value}, not bad")
        reason = (reason or "").strip() or f"cleared by {actor}"
        self.health = DeviceHealth.UNKNOWN
        self.health_note = HealthNote(None, reason, actor, at)
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
            raise InvalidTransition(f"device {self.name} is {self._holder_text}; end that first")

    @property
    def _holder_text(self) -> str:
        if self.hold is not None:
            return f"held by hold {self.held_by} ({self.hold.holder})"
        return f"in test run {self.held_by}"
