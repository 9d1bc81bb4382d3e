"""Who may keep a live stream open, and for how long.

A live stream (the event stream of `live_updates`) is a request that lasts minutes, so the
check made when it opens is not enough: while it runs it is re-checked every few seconds
(`KeepStreamsOpen`), and it ends once its session has (signed out, expired, revoked, the user
disabled or their password changed elsewhere) or its role may no longer read.

Each user may hold at most `max_per_user` streams at a time. The count lives in the lab
database, so it holds across the API processes of an instance: a stream takes one of the
user's numbered slots (`OpenStream`), its lease is renewed at each re-check (`KeepStreamsOpen`,
one pass for all the streams of a process) and it gives the slot back when it ends
(`CloseStream`). A stream whose process was killed stops renewing; its lease
lapses and the slot is free again after at most `lease_s`. Two processes cannot take the same
slot: the store refuses the second, which then tries the next free one."""

from __future__ import annotations

import enum
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from application.auth.errors import AuthServiceUnavailable, Unauthenticated
from application.auth.ports import TokenVerifier
from application.errors import ConcurrentUpdate, TooManyStreams
from application.ports import Clock, IdGenerator, StreamLease
from application.ports import UnitOfWorkFactory as UowFactory
from domain.users import Permission

log = logging.getLogger(__name__)


class StreamEnd(enum.StrEnum):
    """Why a re-check ends a stream."""

    SESSION_ENDED = "session_ended"  # signed out, expired, revoked, user disabled
    FORBIDDEN = "forbidden"  # the user's role may no longer read
    AUTH_UNAVAILABLE = "auth_unavailable"  # the auth service could not be asked: fail closed
    LEASE_LOST = "lease_lost"  # missed its renewals and the slot went to another stream
    SERVER_STOPPING = "server_stopping"  # its process is shutting down: reconnect elsewhere


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


class KeptStream:
    """An open stream as the process's keeper sees it: the token it was opened with, the
    lease it holds now (a new one after it took a free slot again) and, once a re-check
    decided so, why it must end. The stream marks itself `served` each time it runs; one
    that has not run since the last pass (its process frozen, its generator never resumed)
    is not renewed, so its slot lapses as a dead stream's does."""

    def __init__(self, token: str, lease: StreamLease) -> None:
        self.token, self.lease = token, lease
        self.end: StreamEnd | None = None
        self.served = True
        self.wake: Callable[[], None] = lambda: None  # the stream sets how it is woken

    def ended(self, end: StreamEnd) -> None:
        self.end = end
        self.wake()


class KeepStreamsOpen:
    """The periodic re-check of every open stream of a process, in one pass per interval
    (`check_all`): each distinct token is verified once (as on a request: in-process, or by
    the auth service through its cache) for all the streams opened with it, and the leases
    of the streams served since the last pass are renewed in one statement. A stream whose
    lease lapsed meanwhile (its process was short of CPU and the next stream to open removed
    it as expired) takes a free slot of its user again; only when the user holds the cap
    does it end with `LEASE_LOST`. A stream that must end is told through its `KeptStream`
    and woken.

    Per stream this was one verification and one commit every interval: with a thousand
    streams the re-checks alone took a third of a worker's CPU and delayed delivery. The
    pass runs in a thread of its own (a greenlet under gevent) while any stream is open."""

    def __init__(
        self,
        verifier: TokenVerifier,
        uow: UowFactory,
        clock: Clock,
        open_stream: OpenStream,
        lease_s: float,
        recheck_s: float,
        in_background: bool = True,
    ) -> None:
        self.verifier, self.uow, self.clock, self.open_stream = verifier, uow, clock, open_stream
        self.lease, self.recheck_s = timedelta(seconds=lease_s), recheck_s
        self.in_background = in_background
        self._lock = threading.Lock()
        self._kept: set[KeptStream] = set()
        self._loop: threading.Thread | None = None

    def keep(self, token: str, lease: StreamLease) -> KeptStream:
        kept = KeptStream(token, lease)
        with self._lock:
            self._kept.add(kept)
            if self.in_background and self._loop is None:
                self._loop = threading.Thread(target=self._run, name="stream-rechecks", daemon=True)
                self._loop.start()
        return kept

    def release(self, kept: KeptStream) -> None:
        with self._lock:
            self._kept.discard(kept)

    def end_all(self, end: StreamEnd) -> int:
        """Tell every open stream of the process to end now (its process is stopping: a
        graceful shutdown would otherwise wait its whole timeout for streams that never end,
        and then cut them without a word). Returns how many were told."""
        with self._lock:
            kept = [k for k in self._kept if k.end is None]
        for stream in kept:
            stream.ended(end)
        return len(kept)

    @property
    def to_renew(self) -> int:
        """Open streams that ran since the last pass: the next pass renews their leases."""
        with self._lock:
            return sum(1 for k in self._kept if k.served and k.end is None)

    def _run(self) -> None:
        while True:
            time.sleep(self.recheck_s)
            with self._lock:
                if not self._kept:
                    self._loop = None  # the next stream starts a fresh loop
                    return
            try:
                self.check_all()
            except Exception:  # the database is away: leases may lapse, streams go on
                log.warning("the open streams could not be re-checked", exc_info=True)

    def check_all(self) -> None:
        with self._lock:
            kept = [k for k in self._kept if k.end is None]
        verdicts = {token: self._verdict(token) for token in {k.token for k in kept}}
        to_renew: list[KeptStream] = []
        for stream in kept:
            user_id, end = verdicts[stream.token]
            if end is None and user_id != stream.lease.user_id:
                end = StreamEnd.SESSION_ENDED
            if end is not None:
                stream.ended(end)
            elif stream.served:
                stream.served = False
                to_renew.append(stream)
        if not to_renew:
            return
        with self.uow() as uow:
            renewed = uow.stream_leases.renew_all(
                [k.lease.id for k in to_renew], self.clock.now() + self.lease
            )
            uow.commit()
        for stream in to_renew:
            if stream.lease.id not in renewed:
                self._take_a_slot_again(stream)

    def _verdict(self, token: str) -> tuple[str | None, StreamEnd | None]:
        try:
            principal = self.verifier.verify(token)
        except Unauthenticated:
            return None, StreamEnd.SESSION_ENDED
        except AuthServiceUnavailable:
            return None, StreamEnd.AUTH_UNAVAILABLE
        if not principal.can(Permission.READ):
            return principal.user_id, StreamEnd.FORBIDDEN
        return principal.user_id, None

    def _take_a_slot_again(self, stream: KeptStream) -> None:
        try:
            lease = self.open_stream(stream.lease.user_id)
        except TooManyStreams:
            stream.ended(StreamEnd.LEASE_LOST)
            return
        with self._lock:
            still_open = stream in self._kept
            if still_open:
                stream.lease = lease
        if not still_open:  # the stream ended meanwhile and gave back its old lease only
            CloseStream(self.uow)(lease)


class CloseStream:
    """Give the stream's slot back. Idempotent."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, lease: StreamLease) -> None:
        with self.uow() as uow:
            uow.stream_leases.remove(lease.id)
            uow.commit()
