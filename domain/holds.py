"""Holds: an engineer keeps devices for manual work at the bench, for a while.

A hold goes through the same queue as runs (domain.scheduling): it waits while its devices
are busy, gets all of them at once, then keeps them until it is released or it expires.
Nothing is held for ever: every hold has an expiry, and extending it never reaches further
than the lab's maximum hold time from now.

Life: waiting -> active -> ended, or waiting -> ended (cancelled, queue timeout, or
unsatisfiable when the lab can no longer give it its devices)."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import InvalidTransition, InvalidValue
from domain.scheduling import Demand, DeviceRequest, Priority

MIN_HOLD_S = 60
MIN_EXTENSION_S = 60
MAX_REASON_LENGTH = 500
DEFAULT_MAX_HOLD_S = 8 * 3600

RELEASED = "released"
EXPIRED = "expired"
CANCELLED = "cancelled"
QUEUE_TIMEOUT = "queue timeout"
UNSATISFIABLE = "unsatisfiable"


class HoldStatus(enum.StrEnum):
    WAITING = "waiting"  # for its devices: it holds none yet
    ACTIVE = "active"  # it holds its devices until it expires or is released
    ENDED = "ended"


@dataclass(frozen=True)
class HeldDevice:
    """A device of the hold as it was when the hold got it."""

    id: str
    name: str
    model: str = ""
    role: str | None = None  # the role of the request it fills; None for a named device


@dataclass(frozen=True)
class HoldNote:
    """What a held device shows about its hold: which, who, until when and why."""

    hold_id: str
    holder: str
    until: datetime
    reason: str


def _seconds(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidValue(field, "must be a number of seconds")
    return float(value)


@dataclass(eq=False)
class Hold:
    id: str
    holder: str
    reason: str
    duration_s: int
    created_at: datetime
    priority: Priority = Priority.NORMAL
    requested_device_ids: tuple[str, ...] = ()
    device_requests: tuple[DeviceRequest, ...] = ()
    queue_timeout_at: datetime | None = None
    status: HoldStatus = HoldStatus.WAITING
    devices: tuple[HeldDevice, ...] = ()
    started_at: datetime | None = None
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None
    end_reason: str | None = None
    # the worker's estimate of when a waiting hold gets its devices (None: not known)
    estimated_start_at: datetime | None = None
    version: int = 0

    @classmethod
    def place(
        cls,
        *,
        id: str,
        holder: str,
        reason: str,
        duration_s: float,
        at: datetime,
        max_hold_s: float,
        queue_timeout_s: float,
        device_ids: Iterable[str] = (),
        device_requests: Iterable[DeviceRequest] = (),
        priority: Priority | str = Priority.NORMAL,
    ) -> Hold:
        """A new hold, waiting for its devices until the scheduler gives it all of them."""
        duration = _seconds("duration_s", duration_s)
        if not MIN_HOLD_S <= duration <= max_hold_s:
            raise InvalidValue(
                "duration_s", f"must be between {MIN_HOLD_S} and {max_hold_s:g} seconds"
            )
        if duration != int(duration):
            raise InvalidValue("duration_s", "must be a whole number of seconds")
        reason = (reason or "").strip() if isinstance(reason, str) else ""
        if not reason:
            raise InvalidValue("reason", "say what the devices are held for")
        if len(reason) > MAX_REASON_LENGTH:
            raise InvalidValue("reason", f"must be at most {MAX_REASON_LENGTH} characters")
        if _seconds("queue_timeout_s", queue_timeout_s) <= 0:
            raise InvalidValue("queue_timeout_s", "must be more than 0 seconds")
        try:
            priority = Priority(priority)
        except ValueError:
            raise InvalidValue("priority", "must be low, normal or high") from None
        demand = Demand(tuple(device_ids), tuple(device_requests))
        return cls(
            id=id,
            holder=holder,
            reason=reason,
            duration_s=int(duration),
            created_at=at,
            priority=priority,
            requested_device_ids=demand.device_ids,
            device_requests=demand.requests,
            queue_timeout_at=at + timedelta(seconds=queue_timeout_s),
        )

    # -- what the hold is -----------------------------------------------------------------

    @property
    def demand(self) -> Demand:
        return Demand(self.requested_device_ids, self.device_requests)

    @property
    def waiting(self) -> bool:
        return self.status is HoldStatus.WAITING

    @property
    def active(self) -> bool:
        return self.status is HoldStatus.ACTIVE

    @property
    def device_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.devices)

    @property
    def note(self) -> HoldNote:
        if self.expires_at is None:
            raise InvalidTransition(f"hold {self.id} holds no device yet")
        return HoldNote(self.id, self.holder, self.expires_at, self.reason)

    def is_expired(self, now: datetime) -> bool:
        return self.active and self.expires_at is not None and self.expires_at <= now

    def timed_out_in_queue(self, now: datetime) -> bool:
        return self.waiting and self.queue_timeout_at is not None and self.queue_timeout_at <= now

    # -- transitions ----------------------------------------------------------------------

    def assign(self, devices: Iterable[HeldDevice], at: datetime) -> None:
        """The scheduler booked every device the hold asked for: it is active from now,
        for its duration."""
        if not self.waiting:
            raise InvalidTransition(f"hold {self.id} is {self.status.value}, not waiting")
        devs = tuple(devices)
        if len({d.id for d in devs}) != len(devs) or len(devs) != self.demand.places:
            raise InvalidValue("device_ids", f"hold {self.id} asked for {self.demand.places}")
        missing = set(self.requested_device_ids) - {d.id for d in devs}
        if missing:
            raise InvalidValue("device_ids", f"named device(s) not assigned: {sorted(missing)}")
        self.devices = devs
        self.estimated_start_at = None
        self.status = HoldStatus.ACTIVE
        self.started_at = at
        self.expires_at = at + timedelta(seconds=self.duration_s)

    def extend(self, by_s: float, now: datetime, max_hold_s: float) -> None:
        """A later expiry, at most `max_hold_s` from now. Only an active hold is extended."""
        by = _seconds("by_s", by_s)
        if by < MIN_EXTENSION_S:
            raise InvalidValue("by_s", f"must be at least {MIN_EXTENSION_S} seconds")
        if not self.active or self.expires_at is None:
            raise InvalidTransition(
                f"hold {self.id} is {self.status.value}; only an active hold is extended"
            )
        if self.is_expired(now):  # the worker has not ended it yet: it is over all the same
            raise InvalidTransition(
                f"hold {self.id} expired at {self.expires_at.isoformat()}; place a new one"
            )
        until = self.expires_at + timedelta(seconds=by)
        if until > now + timedelta(seconds=max_hold_s):
            raise InvalidValue(
                "by_s",
                f"the hold would then end more than {max_hold_s:g} s from now "
                "(DEVICELAB_MAX_HOLD_S); release it and place a new one if that is needed",
            )
        self.expires_at = until

    def end(self, at: datetime, by: str) -> None:
        """Ended early by a person: released if it held its devices, cancelled if waiting."""
        if self.status is HoldStatus.ENDED:
            raise InvalidTransition(f"hold {self.id} has already ended ({self.end_reason})")
        self._finish(at, by, RELEASED if self.active else CANCELLED)

    def expire(self, now: datetime, by: str = "reaper") -> bool:
        """End the hold if its time is up; otherwise do nothing."""
        if not self.is_expired(now):
            return False
        self._finish(now, by, EXPIRED)
        return True

    def expire_in_queue(self, now: datetime, by: str) -> bool:
        if not self.timed_out_in_queue(now):
            return False
        self._finish(now, by, QUEUE_TIMEOUT)
        return True

    def give_up(self, at: datetime, by: str, why: str) -> None:
        """The lab can never give the waiting hold its devices (retired, deleted)."""
        if not self.waiting:
            raise InvalidTransition(f"hold {self.id} is {self.status.value}, not waiting")
        self._finish(at, by, f"{UNSATISFIABLE}: {why}")

    def _finish(self, at: datetime, by: str, reason: str) -> None:
        self.estimated_start_at = None
        self.status = HoldStatus.ENDED
        self.ended_at = at
        self.ended_by = by
        self.end_reason = reason
