"""What changed since a client last looked: the feed behind the live event stream."""

from __future__ import annotations

import collections
import contextvars
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from application.ports import QUEUE_CHANGE, Change, ChangeSignal, Clock
from application.ports import UnitOfWorkFactory as UowFactory
from application.use_cases.queue_estimates import QueueSummary, queue_now
from domain.devices import Device
from domain.holds import Hold
from domain.test_runs import TestRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Update:
    change: Change
    device: Device | None = None  # the device as it is now (None when deleted)
    run: TestRun | None = None
    queue: QueueSummary | None = None  # the queue as it is now, for a queue change
    hold: Hold | None = None


class ChangeCursor:
    """A reader's position in the change feed. Ids are handed out when a change is written,
    so a transaction that commits late can add an id below one already read; the reader
    therefore looks `LOOKBACK` ids behind its position and skips the ids it has seen."""

    LOOKBACK = 200

    def __init__(self, position: int) -> None:
        self.position = position
        self.seen: set[int] = set()
        # False when the last read stopped at its limit: more may be waiting right now
        self.drained = True

    def fresh(self, changes: list[Change]) -> list[Change]:
        new = [c for c in changes if c.id not in self.seen]
        self.seen.update(c.id for c in new)
        if changes:
            self.position = max(self.position, changes[-1].id)
        floor = self.position - self.LOOKBACK
        self.seen = {i for i in self.seen if i > floor}
        return new


class ReadChanges:
    """Changes the cursor has not seen yet, each with the current state of what changed.
    Several changes of one entity in a batch collapse into the last: the state loaded is the
    latest anyway. So do the queue's: one summary of the queue per batch, however many runs
    entered or left it."""

    def __init__(self, uow: UowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def cursor(self, after_id: int | None = None) -> ChangeCursor:
        """A cursor at `after_id` (a client resuming), or at the end of the feed. What is in
        the feed up to there counts as seen."""
        with self.uow(read_only=True) as uow:
            position = uow.changes.latest_id() if after_id is None else after_id
            cursor = ChangeCursor(position)
            window = uow.changes.since(
                max(0, position - ChangeCursor.LOOKBACK), ChangeCursor.LOOKBACK
            )
            cursor.seen.update(c.id for c in window if c.id <= position)
            return cursor

    def __call__(self, cursor: ChangeCursor, limit: int = 200) -> list[Update]:
        with self.uow(read_only=True) as uow:
            window_start = max(0, cursor.position - ChangeCursor.LOOKBACK)
            window = uow.changes.since(window_start, limit + ChangeCursor.LOOKBACK)
            cursor.drained = len(window) < limit + ChangeCursor.LOOKBACK
            changes = cursor.fresh(window)
            if not changes:
                return []
            last_of: dict[tuple[str, str], Change] = {}
            for change in changes:
                last_of.pop((change.kind, change.entity_id), None)
                last_of[(change.kind, change.entity_id)] = change
            updates = []
            for change in last_of.values():
                if change.kind == "device":
                    device = None if change.deleted else uow.devices.get(change.entity_id)
                    updates.append(Update(change, device=device))
                elif change.kind == "run":
                    updates.append(Update(change, run=uow.test_runs.get(change.entity_id)))
                elif change.kind == QUEUE_CHANGE:
                    updates.append(Update(change, queue=queue_now(uow, self.clock.now())))
                elif change.kind == "hold":
                    updates.append(Update(change, hold=uow.holds.get(change.entity_id)))
                elif change.kind == "runner":
                    # only its id: a runner's state depends on the time it is read at, so
                    # the Runners page reads the registry again (GET /api/runners)
                    updates.append(Update(change))
            return updates


@dataclass(frozen=True)
class RenderedUpdate:
    """An update as every stream sends it: rendered and encoded once per process, shared by
    all its streams."""

    change: Change
    text: str
    data: bytes  # `text` as the bytes a stream writes

    @classmethod
    def of(cls, change: Change, text: str) -> RenderedUpdate:
        return cls(change, text, text.encode())

    @staticmethod
    def joined(batch: list[RenderedUpdate]) -> bytes:
        """A batch's bytes as one write (joined only when there are several)."""
        return batch[0].data if len(batch) == 1 else b"".join(r.data for r in batch)


class CaughtUp:
    """What a stream must still drop from the fan-out's batches after its own catch-up: the
    ids the catch-up sent. The fan-out's reader sends each id once, but it may be behind the
    stream's cursor and find ids the catch-up found first. Those are the ids the cursor has
    seen, and every id at or below its look-back floor (the cursor forgot them; a change
    committed later than the look-back allows is beyond what any reader catches anyway).
    Once a batch reaches `LOOKBACK` past the last id the catch-up saw, the reader's own
    window lies above it, no later batch can repeat one, and batches pass untouched."""

    def __init__(self, cursor: ChangeCursor) -> None:
        self.seen: set[int] | None = set(cursor.seen)
        self.floor = cursor.position - ChangeCursor.LOOKBACK
        self.clear_at = max(self.seen or {cursor.position}) + ChangeCursor.LOOKBACK

    def unsent(
        self, batch: list[RenderedUpdate], reader_floor: float = -math.inf
    ) -> list[RenderedUpdate]:
        """`batch` without what the catch-up sent. `reader_floor` is a bound below every id
        of the batches the stream has yet to take (`Subscription.floor`: the floor of the
        reader's read that found the last batch taken). Once it reaches the catch-up's last
        id, no later batch can repeat one, and filtering stops before the look-back."""
        seen = self.seen
        if seen is None:
            return batch
        unsent = [r for r in batch if r.change.id > self.floor and r.change.id not in seen]
        past_look_back = bool(batch) and max(r.change.id for r in batch) >= self.clear_at
        if past_look_back or reader_floor >= self.clear_at - ChangeCursor.LOOKBACK:
            self.seen = None
        return unsent

    @classmethod
    def nothing(cls) -> CaughtUp:
        """For a stream that did not catch up (it starts where the reader stands)."""
        caught_up = cls(ChangeCursor(0))
        caught_up.seen = None
        return caught_up

    @property
    def done(self) -> bool:
        """True once batches pass untouched: the stream may have them delivered directly."""
        return self.seen is None


class Subscription:
    """One stream's share of the fan-out: the batches the reader found since the stream last
    looked. A stream that falls `capacity` batches behind (a client that does not read) is
    dropped rather than buffered without end; it reconnects with Last-Event-ID and misses
    nothing. A deque and an event rather than a queue.Queue: the reader hands every batch to
    every stream, and a stream takes all that waits in one look.

    A stream whose batches need no filtering any more may ask for them to be delivered
    directly (`deliver_directly`): the reader then hands each batch to the stream's writer
    itself, without waking the stream. At 1,000 streams, waking each stream to write a
    change was about a third of the API workers' samples (docs/performance.md)."""

    def __init__(self, fanout: ChangeFanout, capacity: int) -> None:
        self._fanout, self._capacity = fanout, capacity
        # each batch with the floor of the read that found it: every id in it is above
        self._batches: collections.deque[tuple[list[RenderedUpdate], float]] = collections.deque()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._deliver: Callable[[list[RenderedUpdate]], bool] | None = None
        self.lagging = False
        self.closed = False
        # the floor of the last batch taken; the reader reads no lower after it
        self.floor = -math.inf
        self.start = ChangeCursor(0)  # where the reader stood when the stream subscribed

    def offer(self, batch: list[RenderedUpdate], floor: float = -math.inf) -> None:
        if self.closed:  # its stream has ended (the reader let others run since it looked)
            return
        with self._lock:
            if self._deliver is not None:
                if not self._deliver(batch):
                    self._fall_behind()
                return
            if len(self._batches) >= self._capacity:
                self._fall_behind()
            else:
                self._batches.append((batch, floor))
        self._ready.set()

    def _fall_behind(self) -> None:
        self.lagging = True
        self._fanout.unsubscribe(self)
        self._ready.set()

    def deliver_directly(self, deliver: Callable[[list[RenderedUpdate]], bool]) -> None:
        """From now on the reader calls `deliver` with each batch instead of queueing it for
        the stream: `deliver` must not wait (it buffers what it cannot write at once) and
        returns False when the stream is too far behind to go on (the stream is dropped as
        with a full queue). The batches waiting now are delivered first, in order."""
        with self._lock:
            while self._batches:
                if not deliver(self._batches.popleft()[0]):
                    self._batches.clear()
                    self._fall_behind()
                    return
            self._deliver = deliver

    def wake(self) -> None:
        """Have the stream look at once: its re-check decided it ends, or (delivering
        directly) its writer has bytes it could not write without waiting."""
        self._ready.set()

    def next_batch(self, timeout_s: float) -> list[RenderedUpdate]:
        """Every batch found since the last look, in order, as one (one write for all of
        them); [] after `timeout_s` without one, or when woken (always [] once the batches
        are delivered directly: the wait then only ends at a wake or the timeout)."""
        if not self._batches:
            self._ready.clear()
            if not self._batches:  # a batch offered before the clear set the event in vain
                self._ready.wait(max(0.0, timeout_s))
        if len(self._batches) == 1:
            batch, self.floor = self._batches.popleft()
            return batch
        merged: list[RenderedUpdate] = []
        while self._batches:
            batch, self.floor = self._batches.popleft()
            merged.extend(batch)
        return merged

    def close(self) -> None:
        """The stream ends: the reader hands it nothing more, also from a list of
        subscribers it took before (its socket may close, and its descriptor be reused by
        another connection, while the reader lets other requests run)."""
        self.closed = True
        self._fanout.unsubscribe(self)


class ChangeFanout:
    """The one reader of the change feed in a process, and its fan-out to every open stream.

    The reader runs while anyone subscribes (in a thread, a greenlet under gevent): it waits
    for the signal (a NOTIFY on PostgreSQL, a short poll elsewhere; `safety_s` bounds the
    wait in case a notification was lost), reads what is new with one `ReadChanges` cursor,
    renders each update once and hands the batch to every subscription. However many streams
    are open, the feed is read once per wake-up.

    A stream subscribes before it catches up from its own position (`ReadChanges` with its
    own cursor): whatever the reader finds after that reaches it too, and it drops the ids it
    already sent, so nothing falls between the two."""

    def __init__(
        self,
        read_changes: ReadChanges,
        signal: ChangeSignal,
        render: Callable[[Update], str],
        safety_s: float = 5.0,
        capacity: int = 1000,
        batch_s: float = 0.0,
        offers_per_turn: int = 50,
        take_turn: Callable[[], None] = lambda: time.sleep(0),
    ) -> None:
        self.read_changes, self.signal, self.render = read_changes, signal, render
        self.safety_s, self.capacity, self.batch_s = safety_s, capacity, batch_s
        self.offers_per_turn, self.take_turn = offers_per_turn, take_turn
        self._lock = threading.Lock()
        self._subscribers: set[Subscription] = set()
        self._reader: threading.Thread | None = None
        # the reader's position and seen ids as of the last batch handed out
        self._offered: tuple[int, frozenset[int]] = (0, frozenset())

    def subscribe(self) -> Subscription:
        """A new stream's share of the fan-out. Its `start` is where the reader stood after
        the last batch it handed out: a new stream that begins there (it has no position of
        its own to resume from) gets, from the reader, exactly the changes its own cursor
        would find, and needs neither a catch-up nor any filtering."""
        subscription = Subscription(self, self.capacity)
        with self._lock:
            self._subscribers.add(subscription)
            if self._reader is None:
                # the reader's cursor starts at the end of the feed before anyone is served
                cursor = self.read_changes.cursor()
                self._offered = (cursor.position, frozenset(cursor.seen))
                # in a copy of the subscriber's context: what `render` needs of its caller's
                # (the web framework's application context) is there for the reader too
                self._reader = threading.Thread(
                    target=contextvars.copy_context().run,
                    args=(self._read, cursor),
                    name="change-fanout",
                    daemon=True,
                )
                self._reader.start()
            position, seen = self._offered
        subscription.start = ChangeCursor(position)
        subscription.start.seen.update(seen)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _hand_out(
        self, batch: list[RenderedUpdate], subscribers: list[Subscription], floor: float
    ) -> None:
        """`batch` to every subscriber, letting the process's other work run (`take_turn`)
        after every `offers_per_turn` of them. Under gevent the reader is a greenlet, and an
        offer does not wait: handing a batch to 500 streams in one turn kept every other
        greenlet of the worker waiting 7 ms on average and up to 18 ms, about 4 times a
        second (make bench live, 1,000 streams). In turns of 50 the longest turn of a batch
        is 1-3 ms, at most 6 ms (docs/performance.md). A subscriber whose stream ends
        meanwhile gets nothing more."""
        for n, subscription in enumerate(subscribers, 1):
            subscription.offer(batch, floor)
            if n % self.offers_per_turn == 0 and n < len(subscribers):
                self.take_turn()

    def _read(self, cursor: ChangeCursor) -> None:
        sent_at = -math.inf
        while True:
            with self._lock:
                if not self._subscribers:
                    self._reader = None  # the next subscriber starts a fresh reader
                    return
            self.signal.wait(self.safety_s)
            # at most one batch per `batch_s`: the first change after a quiet spell goes out
            # at once, the ones close behind it wait for the rest of the window and go out
            # together, one wake-up and one write per stream for all of them
            if (rest := sent_at + self.batch_s - time.monotonic()) > 0:
                time.sleep(rest)
            try:
                # every id a read finds lies above the floor of its look-back window, and
                # the cursor's position (hence the floor) never goes down
                floor = cursor.position - ChangeCursor.LOOKBACK
                updates = self.read_changes(cursor)
                if updates:
                    sent_at = time.monotonic()
                while updates:
                    batch = [RenderedUpdate.of(u.change, self.render(u)) for u in updates]
                    with self._lock:  # who gets this batch, and where a newcomer starts
                        subscribers = list(self._subscribers)
                        self._offered = (cursor.position, frozenset(cursor.seen))
                    self._hand_out(batch, subscribers, floor)
                    floor = cursor.position - ChangeCursor.LOOKBACK
                    # read again at once only when the read stopped at its limit: what was
                    # committed meanwhile has signalled, and the next wait returns at once
                    updates = [] if cursor.drained else self.read_changes(cursor)
            except Exception:  # the database is away: streams keep their keepalives
                log.warning("the change feed could not be read; trying again", exc_info=True)
                self.signal.wait(min(1.0, self.safety_s))
