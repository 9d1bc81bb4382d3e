"""Use cases of a hold: place it, end it (release or cancel), extend it, read them, and the
worker's expiry of holds whose time is up.

A hold enters the queue exactly as a run does (application/use_cases/admission.py has the
checks both pass) and is booked by the same scheduling pass. A hold that ends frees its
devices; the pass runs right after the commit, as after a run's end (scheduling.py explains
the lock order that demands it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from application.auth.errors import Forbidden
from application.errors import NotFound
from application.pagination import Page, paginate
from application.ports import Clock, HoldFilter, IdGenerator, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from application.use_cases.admission import (
    check_request,
    lock_named_devices,
    refuse_unsatisfiable,
    why_not_now,
)
from application.use_cases.scheduling import (
    ScheduleWaitingRuns,
    after_devices_freed,
    schedule_in,
)
from domain.booking import release_held_devices
from domain.holds import DEFAULT_MAX_HOLD_S, Hold
from domain.scheduling import DeviceRequest, Priority

REAPER = "reaper"
DEFAULT_QUEUE_TIMEOUT_S = 24 * 3600


def hold_key(hold: Hold) -> tuple:
    return (hold.created_at.isoformat(), hold.id)


def _load(uow: UnitOfWork, hold_id: str, for_update: bool = False) -> Hold:
    hold = uow.holds.get(hold_id, for_update=for_update)
    if hold is None:
        raise NotFound("hold", hold_id)
    return hold


@dataclass(frozen=True)
class Actor:
    """Who asks to change a hold: its holder may, and so may whoever `may_end_any` (admins)."""

    name: str
    may_end_any: bool = False

    def check_may_change(self, hold: Hold) -> None:
        if self.name != hold.holder and not self.may_end_any:
            raise Forbidden(
                f"hold {hold.id} is {hold.holder}'s: only they or an admin may change it"
            )


@dataclass(frozen=True)
class PlaceHoldRequest:
    holder: str
    reason: str
    duration_s: float
    device_ids: list[str] = field(default_factory=list)
    device_requests: list[DeviceRequest] = field(default_factory=list)
    priority: str = Priority.NORMAL.value
    when_busy: str = "queue"
    queue_timeout_s: float | None = None


class PlaceHold:
    """Validate as a run start does, put the hold in the queue and make a scheduling pass in
    the same transaction: on free devices with nobody waiting before it, the hold is active
    at once; otherwise it waits (or, with `when_busy="reject"`, is refused with the devices
    it cannot have, and nothing is kept)."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        ids: IdGenerator,
        max_hold_s: float = DEFAULT_MAX_HOLD_S,
        queue_timeout_s: float = DEFAULT_QUEUE_TIMEOUT_S,
    ) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids
        self.max_hold_s, self.queue_timeout_s = max_hold_s, queue_timeout_s

    def __call__(self, request: PlaceHoldRequest) -> Hold:
        check_request(request.device_ids, request.device_requests, request.when_busy, "a hold")
        now = self.clock.now()
        hold = Hold.place(
            id=self.ids.new_id(),
            holder=request.holder,
            reason=request.reason,
            duration_s=request.duration_s,
            at=now,
            max_hold_s=self.max_hold_s,
            queue_timeout_s=(
                self.queue_timeout_s if request.queue_timeout_s is None else request.queue_timeout_s
            ),
            device_ids=request.device_ids,
            device_requests=request.device_requests,
            priority=request.priority,
        )
        with self.uow() as uow:
            # the queue lock before any device row (see application/use_cases/scheduling.py)
            uow.test_runs.lock_queue()
            named = lock_named_devices(uow, request.device_ids)
            refuse_unsatisfiable(uow, hold.demand, named)
            uow.holds.add(hold)
            outcome = schedule_in(uow, self.ids, now)
            if hold.id not in outcome.holds_started and request.when_busy == "reject":
                raise why_not_now(hold.id, uow, now)  # no commit: nothing is kept
            hold = _load(uow, hold.id)
            uow.commit()
        return hold


class _HoldEnding:
    """End holds, each in its own transaction with the hold and its devices locked, then
    make one scheduling pass for the devices that went free."""

    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def _end(self, hold_id: str, end, actor: Actor | None) -> tuple[Hold, bool]:
        with self.uow() as uow:
            hold = _load(uow, hold_id, for_update=True)
            if actor is not None:
                actor.check_may_change(hold)
            held = hold.device_ids if hold.active else ()
            if not end(hold):
                return hold, False
            devices = uow.devices.get_many_for_update(held)
            by = hold.ended_by or REAPER
            freed = release_held_devices(hold, devices, self.clock.now(), by)
            for device in devices:
                if device.id in freed:
                    uow.devices.update(device)
            uow.holds.update(hold)
            uow.commit()
        return hold, True

    def _schedule(self) -> None:
        after_devices_freed(ScheduleWaitingRuns(self.uow, self.clock, self.ids))


class ReleaseHold(_HoldEnding):
    """The holder (or an admin) ends the hold: released if it held its devices, cancelled
    while it waited. Ending an ended hold is refused (InvalidTransition)."""

    def __call__(self, hold_id: str, actor: Actor) -> Hold:
        now = self.clock.now()

        def end(hold: Hold) -> bool:
            hold.end(now, actor.name)
            return True

        hold, _ = self._end(hold_id, end, actor)
        # freed devices, or a waiting hold that no longer keeps any: the queue may move
        self._schedule()
        return hold


class ExpireHolds(_HoldEnding):
    """Active holds whose time is up end "expired" and free their devices (the worker's
    duty, beside the run reaper). Re-checked under lock: an extension that got there first
    wins."""

    def __call__(self, batch: int = 200) -> list[str]:
        with self.uow(read_only=True) as uow:
            due = uow.holds.list_expired(self.clock.now(), batch)
        expired = []
        for hold_id in due:
            now = self.clock.now()
            _, changed = self._end(hold_id, lambda h, now=now: h.expire(now, REAPER), None)
            if changed:
                expired.append(hold_id)
        if expired:
            self._schedule()
        return expired


class ExtendHold:
    """A later expiry for an active hold, at most DEVICELAB_MAX_HOLD_S from now; its devices
    show the new end."""

    def __init__(
        self, uow: UowFactory, clock: Clock, max_hold_s: float = DEFAULT_MAX_HOLD_S
    ) -> None:
        self.uow, self.clock, self.max_hold_s = uow, clock, max_hold_s

    def __call__(self, hold_id: str, by_s: float, actor: Actor) -> Hold:
        now = self.clock.now()
        with self.uow() as uow:
            hold = _load(uow, hold_id, for_update=True)
            actor.check_may_change(hold)
            hold.extend(by_s, now, self.max_hold_s)
            for device in uow.devices.get_many_for_update(hold.device_ids):
                if device.held_by == hold.id:
                    device.extend_hold(hold.note, now)
                    uow.devices.update(device)
            uow.holds.update(hold)
            uow.commit()
        return hold


class GetHold:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, hold_id: str) -> Hold:
        with self.uow(read_only=True) as uow:
            return _load(uow, hold_id)


class ListHolds:
    """Holds newest first, filtered by status, holder and device."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(
        self, where: HoldFilter, limit: int | None = None, cursor: str | None = None
    ) -> Page[Hold]:
        with self.uow(read_only=True) as uow:
            return paginate(
                "holds",
                lambda n, after: uow.holds.list(where, n, after),
                hold_key,
                limit,
                cursor,
            )
