"""What the scheduler reasons about: requests for devices, waiting runs and holds, the devices
as the scheduler sees them, and the answers it gives. Plain values, built by the use cases from
the entities; nothing here knows about the database."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType

from domain.errors import InvalidValue

MAX_COUNT = 100  # devices one request part may ask for
MAX_REQUESTS = 20  # request parts in one demand
MAX_PLACES = 200  # devices one run or hold may take in all (named ones included)
MAX_LABELS = 20  # labels one request part may ask for
_MAX_TEXT = 200


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2}


class ItemKind(enum.StrEnum):
    RUN = "run"
    HOLD = "hold"


class DeviceState(enum.StrEnum):
    """The device as far as booking is concerned. Only BOOKABLE devices are ever booked;
    MAINTENANCE and OFFLINE ones may come back, RETIRED ones never do."""

    BOOKABLE = "bookable"
    BUSY = "busy"
    MAINTENANCE = "maintenance"
    OFFLINE = "offline"
    RETIRED = "retired"


# the states of a device that is in use or usable: a waiting item gets such a device when
# runs end, without a person bringing anything back
LIVE = frozenset({DeviceState.BOOKABLE, DeviceState.BUSY})


def _text(field_name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(field_name, "must be text")
    value = value.strip()
    if not value:
        return None
    if len(value) > _MAX_TEXT:
        raise InvalidValue(field_name, f"must be at most {_MAX_TEXT} characters")
    return value


def _labels(field_name: str, labels: Mapping[str, str] | None) -> Mapping[str, str]:
    clean: dict[str, str] = {}
    for key, value in (labels or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidValue(field_name, "label keys and values must be text")
        if not key.strip():
            raise InvalidValue(field_name, "label keys must not be empty")
        clean[key] = value
    return MappingProxyType(clean)


@dataclass(frozen=True)
class DeviceRequest:
    """`count` devices of a kind: the model if given, and every label given (same value).
    An empty model or role means "any"."""

    role: str | None = None
    model: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    count: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", _text("device_requests.role", self.role))
        object.__setattr__(self, "model", _text("device_requests.model", self.model))
        labels = _labels("device_requests.labels", self.labels)
        if len(labels) > MAX_LABELS:
            raise InvalidValue("device_requests.labels", f"at most {MAX_LABELS} labels")
        object.__setattr__(self, "labels", labels)
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise InvalidValue("device_requests.count", "must be a whole number")
        if not 1 <= self.count <= MAX_COUNT:
            raise InvalidValue("device_requests.count", f"must be between 1 and {MAX_COUNT}")
        object.__setattr__(self, "_signature", Signature(self.model, tuple(sorted(labels.items()))))

    @property
    def signature(self) -> Signature:
        return self._signature  # type: ignore[attr-defined]

    def describe(self) -> str:
        what = [f"model {self.model}"] if self.model else []
        what += [f"{k}={v}" for k, v in sorted(self.labels.items())]
        kind = ", ".join(what) or "any device"
        role = f"{self.role}: " if self.role else ""
        return f"{role}{self.count} × {kind}"

    def __hash__(self) -> int:
        return hash((self.role, self.signature, self.count))

    def __deepcopy__(self, memo: dict) -> DeviceRequest:
        return self  # immutable (its labels are a read-only view): a copy is itself


@dataclass(frozen=True)
class Signature:
    """What a request part asks for, without role and count: parts with the same signature
    match the same devices, so the scheduler indexes and caches by it."""

    model: str | None
    labels: tuple[tuple[str, str], ...]

    def matches(self, device: DeviceView) -> bool:
        if self.model is not None and device.model != self.model:
            return False
        found = device.labels
        return all(found.get(key) == value for key, value in self.labels)


@dataclass(frozen=True)
class Demand:
    """Devices named by id plus request parts; together the places of one run or hold. A named
    device fills its own place only: request parts are filled from the other devices."""

    device_ids: tuple[str, ...] = ()
    requests: tuple[DeviceRequest, ...] = ()

    def __post_init__(self) -> None:
        ids = tuple(self.device_ids)
        if any(not isinstance(i, str) or not i for i in ids):
            raise InvalidValue("device_ids", "device ids must be non-empty text")
        if len(set(ids)) != len(ids):
            raise InvalidValue("device_ids", "each device may appear only once")
        requests = tuple(self.requests)
        if len(requests) > MAX_REQUESTS:
            raise InvalidValue("device_requests", f"at most {MAX_REQUESTS} requests")
        object.__setattr__(self, "device_ids", ids)
        object.__setattr__(self, "requests", requests)
        if self.places == 0:
            raise InvalidValue("device_ids", "name at least one device or request one")
        if self.places > MAX_PLACES:
            raise InvalidValue("device_requests", f"at most {MAX_PLACES} devices in all")

    @property
    def places(self) -> int:
        return len(self.device_ids) + sum(r.count for r in self.requests)

    @property
    def requested(self) -> int:
        return sum(r.count for r in self.requests)


@dataclass(frozen=True)
class WaitingItem:
    """A run or hold that waits for its devices. `expected_duration_s` is how long it will
    keep them once started (for estimates); `queue_timeout_s` how long it may wait.
    `health_check`: the run is a device's health check (it names that device only)."""

    id: str
    kind: ItemKind
    priority: Priority
    submitted_at: datetime
    demand: Demand
    expected_duration_s: float | None = None
    queue_timeout_s: float | None = None
    health_check: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InvalidValue("id", "must be non-empty text")
        object.__setattr__(self, "kind", ItemKind(self.kind))
        object.__setattr__(self, "priority", Priority(self.priority))
        for name in ("expected_duration_s", "queue_timeout_s"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise InvalidValue(name, "must be a non-negative number of seconds")

    @property
    def order_key(self) -> tuple[int, int, datetime, str]:
        """Health checks first, then higher priority, then first come first served; the id
        breaks ties so the order is total and every pass is deterministic. A health check
        names only its own device, so being first in the whole queue puts it ahead of the
        normal work on that device and of nothing else; like any item it waits for a run
        or hold that already has the device."""
        return (0 if self.health_check else 1, -self.priority.rank, self.submitted_at, self.id)

    @property
    def times_out_at(self) -> datetime | None:
        if self.queue_timeout_s is None:
            return None
        return self.submitted_at + timedelta(seconds=self.queue_timeout_s)

    def timed_out(self, now: datetime) -> bool:
        deadline = self.times_out_at
        return deadline is not None and deadline <= now


@dataclass(frozen=True)
class DeviceView:
    """A device as the scheduler sees it. `busy_until` is the caller's estimate of when a busy
    device frees up (the remaining time of the run or hold that has it), if known."""

    id: str
    model: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    last_seen_at: datetime | None = None
    state: DeviceState = DeviceState.BOOKABLE
    busy_until: datetime | None = None
    # a bad device (domain.health): booked for its health checks only (see for_booking)
    health_checks_only: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InvalidValue("id", "must be non-empty text")
        object.__setattr__(self, "model", self.model or "")
        object.__setattr__(self, "labels", _labels("labels", self.labels))
        object.__setattr__(self, "state", DeviceState(self.state))
        seen = self.last_seen_at
        rank = (len(self.labels), seen is None, -seen.timestamp() if seen else 0.0, self.id)
        object.__setattr__(self, "_rank", rank)
        object.__setattr__(self, "_kind", (self.model, tuple(sorted(self.labels.items()))))

    @property
    def kind(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Model and labels: devices of one kind match the same requests."""
        return self._kind  # type: ignore[attr-defined]

    @property
    def rank(self) -> tuple[int, bool, float, str]:
        """Preference among matching devices, best first: fewest labels (a device's labels
        beyond those asked for are len(labels) minus a constant per request, so one global
        order serves every request), then the one seen most recently, then the id."""
        return self._rank  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Assignment:
    """An item that starts now, and the devices it gets: device id -> role (None for a named
    device or a request without a role). Named devices come first, then each request part."""

    item_id: str
    devices: Mapping[str, str | None]


@dataclass(frozen=True)
class Shortfall:
    """Why a demand cannot be met. Either a named device (`device_id`, `reason` unknown or
    retired) or a group of request parts (`parts`, indexes into the demand's requests) that
    together need `needed` devices while only `matching` devices match any of them."""

    reason: str
    needed: int
    matching: int
    parts: tuple[int, ...] = ()
    device_id: str | None = None

    def describe(self, demand: Demand) -> str:
        if self.device_id is not None:
            return f"device {self.device_id} is {self.reason}"
        asked = "; ".join(f"#{i + 1} ({demand.requests[i].describe()})" for i in self.parts)
        noun = "device matches" if self.matching == 1 else "devices match"
        if len(self.parts) == 1:
            return f"request {asked}: {self.matching} {noun}"
        return (
            f"requests {asked} together need {self.needed} devices: "
            f"{self.matching} {noun} any of them"
        )


@dataclass(frozen=True)
class Feasibility:
    """Whether some assignment could ever satisfy a demand from the lab's devices that are
    not retired (busy, maintenance and offline ones count: they may come back)."""

    problems: tuple[Shortfall, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class PartWait:
    """A request part that lacks devices: `missing` of its places could not be filled from
    the `free_for_it` matching devices that are free and not kept for earlier items;
    `kept_for_earlier` more are bookable but kept for (or given to) items ahead of it."""

    part: int
    request: DeviceRequest
    missing: int
    free_for_it: int
    kept_for_earlier: int


@dataclass(frozen=True)
class WaitingFor:
    """What a waiting item waits for. `devices`: named devices that are not free for it, with
    why (busy, maintenance, offline, or "kept for an earlier item" / "booked now" when an item
    ahead of it in the queue has them). `parts`: request parts that lack devices."""

    item_id: str
    position: int
    devices: Mapping[str, str]
    parts: tuple[PartWait, ...]


@dataclass(frozen=True)
class Plan:
    """Everything one scheduling pass decides: who starts now (in queue order), what every
    other waiting item waits for (in queue order), which items can never be satisfied by the
    lab as it is now (the caller aborts them), and which have timed out."""

    assignments: tuple[Assignment, ...]
    waiting: tuple[WaitingFor, ...]
    unsatisfiable: Mapping[str, tuple[Shortfall, ...]]
    timed_out: tuple[str, ...]


def in_queue_order(items: Iterable[WaitingItem]) -> list[WaitingItem]:
    items = list(items)
    if len({i.id for i in items}) != len(items):
        raise InvalidValue("waiting", "each waiting item may appear only once")
    return sorted(items, key=lambda i: i.order_key)


def for_booking(
    waiting: Iterable[WaitingItem], devices: Iterable[DeviceView], now: datetime
) -> list[DeviceView]:
    """The devices as this pass may book them. A device for health checks only (a bad one)
    stays as it is while a health check (not timed out) waits for it, and that check, first
    in the queue, books it; otherwise it is out of service like one in maintenance: never
    booked, and an item that names it is dormant and keeps nothing. The one place where bad
    devices are kept from normal work."""
    checked = {
        device_id
        for item in waiting
        if item.health_check and not item.timed_out(now)
        for device_id in item.demand.device_ids
    }
    return [
        d
        if not d.health_checks_only or d.id in checked or d.state is not DeviceState.BOOKABLE
        else replace(d, state=DeviceState.MAINTENANCE)
        for d in devices
    ]


def by_id(devices: Iterable[DeviceView]) -> dict[str, DeviceView]:
    found: dict[str, DeviceView] = {}
    for device in devices:
        if device.id in found:
            raise InvalidValue("devices", f"device {device.id} appears twice")
        found[device.id] = device
    return found
