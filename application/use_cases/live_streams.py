"""Who may keep a live stream open, and for how long.

A live stream (the event stream of `live_updates`) is a request that lasts minutes, so the
check made when it opens is not enough: while it runs it is re-checked every few seconds
(`KeepStreamOpen`), and it ends once its session has (signed out, expired, revoked, the user
disabled or their password changed elsewhere) or its role may no longer read.

Each user may hold at most `max_per_user` streams at a time. The count lives in the lab
database, so it holds across the API processes of an instance: a stream takes one of the
user's numbered slots (`OpenStream`), renews its lease at each re-check and gives the slot back
when it ends (`CloseStream`). A stream whose process was killed stops renewing; its lease
lapses and the slot is free again after at most `lease_s`. Two processes cannot take the same
slot: the store refuses the second, which then tries the next free one."""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from datetime import timedelta

from application.auth.errors import AuthServiceUnavailable, Unauthenticated
from application.auth.ports import TokenVerifier
from application.errors import ConcurrentUpdate, TooManyStreams
from application.ports import Clock, IdGenerator, StreamLease
from application.ports import UnitOfWorkFactory as UowFactory
from domain.users import Permission


class StreamEnd(enum.StrEnum):
    """Why a re-check ends a stream."""

    SESSION_ENDED = "session_ended"  # signed out, expired, revoked, user disabled
    FORBIDDEN = "forbidden"  # the user's role may no longer read
    AUTH_UNAVAILABLE = "auth_unavailable"  # the auth service could not be asked: fail closed
    LEASE_LOST = "lease_lost"  # missed its renewals and the slot went to another stream


def lease_for(recheck_s: float) -> float:
    """How long a lease lasts: two re-check intervals, so one missed renewal lets it lapse."""
    return 2 * recheck_s


def first_free_slot(held: list[StreamLease], slots: int) -> int | None:
    """The lowest free slot; None when `slots` streams are held (also when the cap was
    lowered and streams from before still hold higher slots)."""
    if len(held) >= slots:
        return None
    taken = {lease.slot for lease in held}
    return next((slot for slot in range(slots) if slot not in taken), None)


def slot_to_try(
    held: list[StreamLease],
    slots: int,
    attempt: int,
    choose: Callable[[list[int]], int] = random.choice,
) -> int | None:
    """The lowest free slot at the first attempt; after a lost race one chosen among the
    free ones. Streams of one user opened together (a wall of tabs reconnecting after a
    restart, a hundred at once under the gevent worker) all read the same free slots: were
    they all to try the lowest again, one would win per round and the rest run out of
    attempts with slots still free."""
    lowest = first_free_slot(held, slots)
    if lowest is None or attempt == 0:
        return lowest
    taken = {lease.slot for lease in held}
    return choose([slot for slot in range(slots) if slot not in taken])


class OpenStream:
    """Take a free stream slot of the user, or refuse with TooManyStreams."""

    ATTEMPTS = 20  # races lost to other streams before giving up (each one took a slot)

    def __init__(
        self, uow: UowFactory, clock: Clock, ids: IdGenerator, max_per_user: int, lease_s: float
    ) -> None:
        if max_per_user < 1:
            raise ValueError("max_per_user must be at least 1")
        self.uow, self.clock, self.ids = uow, clock, ids
        self.max_per_user, self.lease = max_per_user, timedelta(seconds=lease_s)

    def __call__(self, user_id: str) -> StreamLease:
        for attempt in range(self.ATTEMPTS):
            try:
                return self._take_slot(user_id, attempt)
            except ConcurrentUpdate:
                continue  # another process took that slot (or row) just now; look again
        raise TooManyStreams(self.max_per_user, 1)

    def _take_slot(self, user_id: str, attempt: int) -> StreamLease:
        now = self.clock.now()
        with self.uow() as uow:
            uow.stream_leases.remove_expired(now)
            held = [s for s in uow.stream_leases.of_user(user_id) if s.expires_at > now]
            slot = slot_to_try(held, self.max_per_user, attempt)
            if slot is None:
                # the soonest a slot can come free: when the oldest renewal lapses
                soonest = min(lease.expires_at for lease in held)
                wait = max(1, math.ceil((soonest - now).total_seconds()))
                raise TooManyStreams(self.max_per_user, wait)
            lease = StreamLease(self.ids.new_id(), user_id, slot, now + self.lease)
            uow.stream_leases.add(lease)
            uow.commit()
            return lease


class KeepStreamOpen:
    """The periodic re-check of an open stream: its token is verified again (as on a request:
    in-process, or by the auth service through its cache) and its lease renewed. Returns why
    the stream must end, or None to keep it going."""

    def __init__(
        self, verifier: TokenVerifier, uow: UowFactory, clock: Clock, lease_s: float
    ) -> None:
        self.verifier, self.uow, self.clock = verifier, uow, clock
        self.lease = timedelta(seconds=lease_s)

    def __call__(self, token: str, lease: StreamLease) -> StreamEnd | None:
        try:
            principal = self.verifier.verify(token)
        except Unauthenticated:
            return StreamEnd.SESSION_ENDED
        except AuthServiceUnavailable:
            return StreamEnd.AUTH_UNAVAILABLE
        if principal.user_id != lease.user_id:
            return StreamEnd.SESSION_ENDED
        if not principal.can(Permission.READ):
            return StreamEnd.FORBIDDEN
        with self.uow() as uow:
            renewed = uow.stream_leases.renew(lease.id, self.clock.now() + self.lease)
            uow.commit()
        return None if renewed else StreamEnd.LEASE_LOST


class CloseStream:
    """Give the stream's slot back. Idempotent."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, lease: StreamLease) -> None:
        with self.uow() as uow:
            uow.stream_leases.remove(lease.id)
            uow.commit()
