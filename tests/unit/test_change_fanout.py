"""One reader of the change feed per process, fanned out to every live stream (issue 13).

On the in-memory lab with the polling signal (the SQLite one): the feed is read and each
update rendered once for all subscribers, a stream gets what it missed from its own position
and then the live changes without any twice, a stream that does not read is dropped (it
reconnects with Last-Event-ID), and the reader stops when the last stream has gone."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from adapters.http.events import stream_changes
from adapters.persistence.change_signal import PollingChangeSignal
from application.ports import Change
from application.use_cases.live_updates import (
    CaughtUp,
    ChangeCursor,
    ChangeFanout,
    ReadChanges,
    RenderedUpdate,
    Subscription,
)

BOUND_S = 10
AT = datetime(2026, 12, 3, tzinfo=UTC)


def eventually(condition, within_s: float = BOUND_S) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)


class CountingRender:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, update) -> str:
        self.calls += 1
        return f"id: {update.change.id}\n\n"


def fanout_of(lab, render=None, capacity: int = 1000) -> ChangeFanout:
    read = ReadChanges(lab.new_uow, lab.clock)
    return ChangeFanout(
        read, PollingChangeSignal(0.01), render or CountingRender(), capacity=capacity
    )


def test_every_subscriber_gets_each_update_rendered_once(lab) -> None:
    render = CountingRender()
    fanout = fanout_of(lab, render)
    subscriptions = [fanout.subscribe() for _ in range(5)]
    devices = [lab.add_device(f"meter-{n}") for n in range(3)]
    got = {id(s): [] for s in subscriptions}
    for subscription in subscriptions:
        while len(got[id(subscription)]) < 3:
            batch = subscription.next_batch(BOUND_S)
            assert batch, "a change never arrived"
            got[id(subscription)].extend(batch)
    firsts = next(iter(got.values()))
    assert [r.change.entity_id for r in firsts] == [d.id for d in devices]
    for batches in got.values():
        assert [r is f for r, f in zip(batches, firsts, strict=True)] == [True] * 3
    assert render.calls == 3  # not 15: rendered once, shared
    for subscription in subscriptions:
        subscription.close()


def test_the_reader_stops_with_the_last_subscriber_and_starts_again_with_the_next(lab) -> None:
    fanout = fanout_of(lab)
    first = fanout.subscribe()
    reader = fanout._reader
    assert reader is not None and reader.is_alive()
    first.close()
    reader.join(BOUND_S)
    assert not reader.is_alive() and fanout._reader is None
    second = fanout.subscribe()
    device = lab.add_device("meter-after-restart")
    batch = second.next_batch(BOUND_S)
    assert [r.change.entity_id for r in batch] == [device.id]
    second.close()


def test_a_stream_that_does_not_read_is_dropped_instead_of_buffered_without_end(lab) -> None:
    fanout = fanout_of(lab, capacity=2)
    reading, idle = fanout.subscribe(), fanout.subscribe()
    for n in range(4):
        lab.add_device(f"meter-{n}")
        assert reading.next_batch(BOUND_S), "the reader never found the change"
    eventually(lambda: idle.lagging)
    assert fanout.subscribers == 1
    reading.close()


def test_a_stream_resumes_from_its_position_then_follows_live_without_repeats(lab) -> None:
    read = ReadChanges(lab.new_uow, lab.clock)
    fanout = fanout_of(lab)
    before = [lab.add_device(f"old-{n}") for n in range(3)]
    after = read.cursor(0).position  # nothing seen: the client resumes from the very start
    stream = stream_changes(read, fanout, after, max_seconds=3, keepalive_s=0.05)
    texts: list[str] = []
    collector = threading.Thread(target=lambda: texts.extend(stream), daemon=True)
    collector.start()
    eventually(lambda: fanout.subscribers == 1)
    live = [lab.add_device(f"new-{n}") for n in range(3)]
    expected = {d.id for d in before + live}
    collector.join(BOUND_S)  # the stream ends after its max_seconds
    assert not collector.is_alive()
    ids = ids_in(texts)
    assert len(ids) == len(set(ids)), "an event was sent twice"
    assert len(ids) == len(expected)
    assert ids == sorted(ids)
    assert fanout.subscribers == 0  # the stream's end gave its subscription back


def ids_in(texts: list[str | bytes]) -> list[int]:
    return [
        int(line.removeprefix("id: "))
        for text in list(texts)
        for line in (text.decode() if isinstance(text, bytes) else text).splitlines()
        if line.startswith("id: ")
    ]


def test_changes_close_behind_each_other_reach_a_stream_in_one_batch(lab) -> None:
    """DEVICELAB_STREAM_BATCH_S: the first change after a quiet spell goes out at once; those
    that follow within the window wait for it and go out together, one wake-up and one write
    per stream instead of one per change (make bench live: a fifth less CPU for the fan-out
    of 1,000 streams)."""
    read = ReadChanges(lab.new_uow, lab.clock)
    fanout = ChangeFanout(read, PollingChangeSignal(0.01), CountingRender(), batch_s=1.0)
    subscription = fanout.subscribe()
    time.sleep(0.05)  # the reader has read the empty feed: its window began then
    time.sleep(1.0)  # a quiet spell longer than the window
    first = lab.add_device("meter-first")
    began = time.monotonic()
    batch = subscription.next_batch(BOUND_S)
    assert [r.change.entity_id for r in batch] == [first.id]
    assert time.monotonic() - began < 0.9  # not held back for a window
    close_behind = []
    for n in range(3):  # further apart than the polls, well within the window
        time.sleep(0.1)
        close_behind.append(lab.add_device(f"meter-{n}"))
    batch = subscription.next_batch(BOUND_S)
    assert [r.change.entity_id for r in batch] == [d.id for d in close_behind]
    subscription.close()


def test_one_look_takes_every_batch_that_waited_in_order(lab) -> None:
    """A stream that was busy writing takes all the batches found meanwhile in one look, so
    it writes once for all of them."""
    fanout = fanout_of(lab)
    subscription = fanout.subscribe()
    reading = fanout.subscribe()
    devices = []
    for n in range(3):  # three wake-ups of the reader, three batches
        devices.append(lab.add_device(f"meter-{n}"))
        assert reading.next_batch(BOUND_S), "the reader never found the change"
    batch = subscription.next_batch(BOUND_S)
    assert [r.change.entity_id for r in batch] == [d.id for d in devices]
    assert [r.data for r in batch] == [r.text.encode() for r in batch]
    subscription.close()
    reading.close()


def test_a_wake_ends_the_wait_at_once_with_nothing(lab) -> None:
    fanout = fanout_of(lab)
    subscription = fanout.subscribe()
    threading.Timer(0.05, subscription.wake).start()
    began = time.monotonic()
    assert subscription.next_batch(BOUND_S) == []
    assert time.monotonic() - began < BOUND_S / 2
    subscription.close()


def change(change_id: int) -> Change:
    return Change(id=change_id, kind="device", entity_id=f"d{change_id}", at=AT)


def rendered(*ids: int) -> list[RenderedUpdate]:
    return [RenderedUpdate.of(change(i), f"id: {i}\n\n") for i in ids]


def caught_up_at(position: int, seen: set[int]) -> CaughtUp:
    cursor = ChangeCursor(position)
    cursor.seen.update(seen)
    return CaughtUp(cursor)


def test_what_the_catch_up_sent_is_not_sent_again() -> None:
    caught_up = caught_up_at(500, {498, 499, 500})
    assert [r.change.id for r in caught_up.unsent(rendered(499, 500, 501))] == [501]


def test_a_change_committed_late_below_the_position_is_still_sent() -> None:
    caught_up = caught_up_at(500, {498, 500})  # 499 committed after the catch-up read
    assert [r.change.id for r in caught_up.unsent(rendered(499, 501))] == [499, 501]


def test_a_reader_far_behind_a_long_catch_up_repeats_nothing_it_sent() -> None:
    """A stream that caught up over more than the look-back, with the process's reader
    behind it: the ids below the cursor's floor were sent, though the cursor forgot them
    (it used to send them a second time)."""
    lookback = ChangeCursor.LOOKBACK
    position = 1000 + 2 * lookback
    cursor = ChangeCursor(1000)
    cursor.fresh([change(i) for i in range(1001, position + 1)])  # the catch-up's reads
    caught_up = CaughtUp(cursor)
    behind = rendered(*range(1001, position + 6))  # the reader finds them all after it
    assert [r.change.id for r in caught_up.unsent(behind)] == list(
        range(position + 1, position + 6)
    )


def test_past_the_look_back_batches_pass_untouched() -> None:
    caught_up = caught_up_at(500, {500})
    first = rendered(501, 500 + ChangeCursor.LOOKBACK)
    assert [r.change.id for r in caught_up.unsent(first)] == [501, 500 + ChangeCursor.LOOKBACK]
    later = rendered(700 + ChangeCursor.LOOKBACK)
    assert caught_up.unsent(later) is later


class GatedSignal:
    """A change signal that stays silent until opened: the process's reader falls behind."""

    def __init__(self) -> None:
        self.open = threading.Event()

    def wait(self, timeout_s: float) -> None:
        if not self.open.wait(timeout_s):
            return
        time.sleep(0.01)

    def close(self) -> None:
        pass


def test_a_long_catch_up_ahead_of_the_reader_sends_each_change_once(lab) -> None:
    """Found in session 10: a stream that resumed from further back than the look-back while
    the process's reader was still behind got the oldest changes twice, once from its own
    catch-up and again from the reader (its cursor had forgotten them)."""
    read = ReadChanges(lab.new_uow, lab.clock)
    signal = GatedSignal()
    fanout = ChangeFanout(read, signal, CountingRender(), safety_s=BOUND_S)
    early = fanout.subscribe()  # the reader starts at the end of the empty feed, and waits
    devices = [lab.add_device(f"meter-{n}") for n in range(2 * ChangeCursor.LOOKBACK + 50)]
    stream = stream_changes(read, fanout, 0, max_seconds=3, keepalive_s=0.05)
    texts: list[str | bytes] = [next(stream), next(stream)]  # the greeting, then the catch-up
    while len(ids_in(texts)) < len(devices):
        texts.append(next(stream))
    signal.open.set()  # the reader now finds every change the catch-up sent
    texts.extend(stream)  # until max_seconds
    ids = ids_in(texts)
    assert len(ids) == len(devices), f"{len(ids) - len(set(ids))} events were sent twice"
    early.close()


# -- delivery straight to a stream's writer (adapters/http/direct_writes) --------------------


def test_a_direct_delivery_gets_what_waited_first_then_each_batch_without_a_wake() -> None:
    fanout = ChangeFanout(None, None, CountingRender())  # not started: batches offered by hand
    subscription = Subscription(fanout, capacity=10)
    subscription.offer(rendered(1), floor=-200)
    subscription.offer(rendered(2, 3), floor=-199)
    delivered: list[list[int]] = []
    subscription.deliver_directly(lambda b: delivered.append([r.change.id for r in b]) or True)
    subscription.offer(rendered(4))
    assert delivered == [[1], [2, 3], [4]]
    assert subscription.next_batch(0) == []  # nothing queued for the stream itself


def test_a_direct_delivery_that_cannot_keep_up_drops_the_stream() -> None:
    fanout = ChangeFanout(None, None, CountingRender())
    subscription = Subscription(fanout, capacity=10)
    fanout._subscribers.add(subscription)
    subscription.deliver_directly(lambda b: False)
    subscription.offer(rendered(1))
    assert subscription.lagging and fanout.subscribers == 0


def directly_delivered(fanout: ChangeFanout, n: int) -> tuple[list[Subscription], list[int]]:
    """`n` subscriptions delivered directly; each appends its index to the list returned
    when a batch reaches it."""
    got: list[int] = []
    subscriptions = []
    for index in range(n):
        subscription = Subscription(fanout, capacity=10)
        fanout._subscribers.add(subscription)
        subscription.deliver_directly(lambda batch, index=index: got.append(index) or True)
        subscriptions.append(subscription)
    return subscriptions, got


def test_the_reader_lets_other_work_run_between_turns_of_offers() -> None:
    """Found in session 14 (make bench live): under gevent the reader handed each batch to
    500 streams in one turn, and every REST request of the worker waited behind it, 7 ms
    on average and up to 18 ms, about 4 times a second."""
    turns: list[int] = []
    fanout = ChangeFanout(
        None, None, CountingRender(), offers_per_turn=50, take_turn=lambda: turns.append(len(got))
    )
    subscriptions, got = directly_delivered(fanout, 120)
    fanout._hand_out(rendered(1), subscriptions, floor=-200)
    assert got == list(range(120))  # every stream, in the order taken
    assert turns == [50, 100]  # a turn after every 50 offers, none after the last


def test_a_stream_that_ends_while_the_reader_lets_others_run_gets_nothing_more() -> None:
    """Its socket may be closed by then, and the descriptor reused by another connection:
    the reader must not write to it from the list of subscribers it took before."""
    subscriptions: list[Subscription] = []
    fanout = ChangeFanout(
        None, None, CountingRender(), offers_per_turn=2, take_turn=lambda: subscriptions[3].close()
    )
    taken, got = directly_delivered(fanout, 6)
    subscriptions.extend(taken)
    fanout._hand_out(rendered(1), subscriptions, floor=-200)
    assert got == [0, 1, 2, 4, 5]
    assert fanout.subscribers == 5


def test_a_new_stream_starts_where_the_reader_stands_and_gets_only_what_follows(lab) -> None:
    fanout = fanout_of(lab)
    first = fanout.subscribe()
    old = [lab.add_device(f"old-{n}") for n in range(3)]
    got = []
    while len(got) < 3:
        got += first.next_batch(BOUND_S)
    second = fanout.subscribe()
    assert second.start.position == max(r.change.id for r in got)
    assert set(second.start.seen) >= {r.change.id for r in got}
    new = lab.add_device("new")
    batch = second.next_batch(BOUND_S)
    assert [r.change.entity_id for r in batch] == [new.id]
    assert {d.id for d in old}.isdisjoint(r.change.entity_id for r in batch)
    first.close()
    second.close()


def test_filtering_stops_once_the_readers_floor_passes_what_the_catch_up_saw() -> None:
    caught_up = caught_up_at(500, {499, 500})
    assert not caught_up.done
    assert [r.change.id for r in caught_up.unsent(rendered(500, 501), reader_floor=499)] == [501]
    assert not caught_up.done  # the reader could still come back with 500
    assert [r.change.id for r in caught_up.unsent(rendered(502), reader_floor=500)] == [502]
    assert caught_up.done


class RecordingWriter:
    """What a stream hands a direct writer, in order."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.broken, self.flushes = False, 0
        self.written_at = time.monotonic()
        self.wake = lambda: None

    def deliver(self, batch: list[RenderedUpdate]) -> bool:
        self.sent.append(b"".join(r.data for r in batch))
        self.written_at = time.monotonic()
        return True

    def write(self, data: bytes) -> None:
        self.sent.append(data)
        self.written_at = time.monotonic()

    def flush(self) -> None:
        self.flushes += 1

    def abort(self) -> None:
        self.broken = True


def test_a_new_stream_hands_its_changes_to_the_direct_writer_after_its_greeting(lab) -> None:
    read = ReadChanges(lab.new_uow, lab.clock)
    fanout = fanout_of(lab)
    writer, asked = RecordingWriter(), []
    stream = stream_changes(
        read, fanout, None, max_seconds=2, keepalive_s=0.3, direct=lambda: asked.append(1) or writer
    )
    yielded: list[str | bytes] = [next(stream)]  # the greeting, through the server
    assert asked == []
    collector = threading.Thread(target=lambda: yielded.extend(stream), daemon=True)
    collector.start()
    eventually(lambda: asked == [1])
    devices = [lab.add_device(f"meter-{n}") for n in range(5)]
    collector.join(BOUND_S)
    assert not collector.is_alive()
    assert ids_in(yielded) == [] and len(yielded) == 1  # nothing more went through the server
    ids = ids_in(writer.sent)
    assert len(ids) == len(devices) and ids == sorted(set(ids))
    assert b": keepalive\n\n" in writer.sent  # a quiet stream's keepalive goes the same way
    assert writer.flushes >= 1  # what waited went out before the server's last chunk
    assert fanout.subscribers == 0


def test_a_resuming_stream_goes_direct_once_its_catch_up_cannot_repeat(lab) -> None:
    read = ReadChanges(lab.new_uow, lab.clock)
    fanout = fanout_of(lab)
    early = fanout.subscribe()  # the reader runs from the start
    before = [lab.add_device(f"old-{n}") for n in range(5)]
    writer, asked = RecordingWriter(), []
    stream = stream_changes(
        read, fanout, 0, max_seconds=3, keepalive_s=0.05, direct=lambda: asked.append(1) or writer
    )
    yielded: list[str | bytes] = []
    collector = threading.Thread(target=lambda: yielded.extend(stream), daemon=True)
    collector.start()
    eventually(lambda: fanout.subscribers == 2 and len(ids_in(yielded)) == len(before))
    assert asked == []  # the reader's next batches might still repeat the catch-up
    live = [lab.add_device(f"new-{n}") for n in range(ChangeCursor.LOOKBACK + 20)]
    collector.join(BOUND_S)
    assert asked == [1], "the stream never went direct"
    ids = ids_in(yielded) + ids_in(writer.sent)
    assert len(ids) == len(before) + len(live), f"{len(ids) - len(set(ids))} sent twice"
    assert ids == sorted(ids)
    early.close()


class FullWriter(RecordingWriter):
    """A writer whose client has let too much pile up: every delivery is refused."""

    def deliver(self, batch: list[RenderedUpdate]) -> bool:
        return False


def test_a_direct_stream_whose_client_cannot_keep_up_is_cut_off_not_written_to(lab) -> None:
    read = ReadChanges(lab.new_uow, lab.clock)
    fanout = fanout_of(lab)
    writer = FullWriter()
    stream = stream_changes(
        read, fanout, None, max_seconds=10, keepalive_s=5, direct=lambda: writer
    )
    yielded: list[str | bytes] = [next(stream)]  # the greeting
    collector = threading.Thread(target=lambda: yielded.extend(stream), daemon=True)
    collector.start()
    eventually(lambda: fanout.subscribers == 1)
    time.sleep(0.05)  # the stream has asked for its writer and waits
    lab.add_device("meter")
    collector.join(BOUND_S)
    assert not collector.is_alive(), "the stream went on with a client that reads nothing"
    assert writer.broken  # aborted: a chunk cut in two cannot be finished
    assert len(yielded) == 1 and writer.sent == []
    assert fanout.subscribers == 0
