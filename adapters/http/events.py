"""/api/events: live device, run and hold changes as Server-Sent Events.

Each event carries the changed device, run or hold in the same shape as the REST API, and
the id of the change; when the queue changes (a run or hold enters or leaves it, or the
worker's estimated starts move), a `queue` event carries the queue in order: {"length",
"items": [{"kind", "id", "position", "estimated_start_at"}]} (one per batch of changes), so a
client that reconnects with `Last-Event-ID` (or `?after=`) misses
nothing. The stream reads the database's change log, which every API process and worker
writes in the transaction of the change: it works the same with one process or many, with
or without a broker. A stream ends after `max_seconds`; clients reconnect (the `retry` hint
tells them how soon). Streams do not each read the log: the process's one reader
(`live_updates.ChangeFanout`) renders every change once and hands it to all of them; a
stream reads only what it missed after `Last-Event-ID` itself.

An open stream is re-checked every DEVICELAB_STREAM_RECHECK_S seconds
(`application.use_cases.live_streams`): once its session has ended (signed out, expired,
revoked, user disabled, password changed elsewhere) or its role may no longer read, it sends
a last `session_ended` event, whose data says why, and closes; a client should then sign in
again rather than reconnect. Each user holds at most DEVICELAB_MAX_STREAMS_PER_USER streams;
one more is answered 429 with Retry-After. A stream gives its slot back when it ends, for
whatever reason (client gone, `max_seconds`, session ended)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator

from dependency_injector.wiring import Provide, inject
from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.devices import device_json
from adapters.http.direct_writes import DIRECT_WRITER, ChunkWriter
from adapters.http.holds import hold_json
from adapters.http.json_bodies import iso
from adapters.http.security import bearer_token, current_principal, requires
from adapters.http.test_runs import run_json
from application.use_cases.live_streams import (
    CloseStream,
    KeepStreamsOpen,
    KeptStream,
    OpenStream,
    StreamEnd,
)
from application.use_cases.live_updates import (
    CaughtUp,
    ChangeCursor,
    ChangeFanout,
    ReadChanges,
    RenderedUpdate,
    Update,
)
from application.use_cases.queue_estimates import QueueSummary
from domain.users import Permission

log = logging.getLogger(__name__)

# what a client is told in the last event when the stream's session has ended
SESSION_ENDED_MESSAGES = {
    StreamEnd.SESSION_ENDED: (
        "your session or API token has ended (signed out, expired or revoked, or the account "
        "was changed); sign in again or use a valid token"
    ),
    StreamEnd.FORBIDDEN: "your role may no longer see the lab; sign in again or ask an admin",
}

blp = Blueprint(
    "events", __name__, url_prefix="/api/events", description="Live changes (Server-Sent Events)"
)


class EventQuerySchema(Schema):
    after = fields.Integer(
        # beyond a 64-bit integer no database can compare it (SQLite raised OverflowError: 500)
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "resume after this event id (same as Last-Event-ID)"},
    )
    max_seconds = fields.Integer(
        load_default=300,
        validate=validate.Range(min=1, max=3600),
        metadata={"description": "close the stream after this long; clients reconnect"},
    )


def resume_after(args: dict) -> int | None:
    """Where a stream resumes: `?after=`, else the Last-Event-ID a reconnecting client sends."""
    after = args.get("after")
    last_event_id = request.headers.get("Last-Event-ID", "")
    if after is None and last_event_id.isdigit() and len(last_event_id) < 19:
        after = int(last_event_id)
    return after


def queue_event_data(queue: QueueSummary) -> dict:
    return {
        "length": queue.length,
        "items": [
            {
                "kind": item.kind,
                "id": item.id,
                "position": item.position,
                "estimated_start_at": iso(item.estimated_start_at),
            }
            for item in queue.items
        ],
    }


def event_text(update: Update) -> str:
    """An update as an SSE event ("" for a hold or run gone before it could be loaded).
    The process's change reader renders each update once with this for all its streams."""
    change = update.change
    if update.queue is not None:
        name, data = "queue", queue_event_data(update.queue)
    elif change.kind == "device":
        if update.device is None:
            name, data = "device_deleted", {"id": change.entity_id}
        else:
            name, data = "device", device_json(update.device)  # what DeviceSchema dumps
    elif change.kind == "hold":
        if update.hold is None:
            return ""
        name, data = "hold", hold_json(update.hold)
    elif change.kind == "runner":
        name, data = "runner", {"id": change.entity_id}
    else:
        if update.run is None:
            return ""
        name, data = "run", run_json(update.run, with_samples=True)  # TestRunSchema's
    return f"id: {change.id}\nevent: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _session_ended(end: StreamEnd) -> str:
    data = {"reason": end.value, "message": SESSION_ENDED_MESSAGES[end]}
    return f"event: session_ended\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def closing_event(end: StreamEnd) -> str:
    """What a stream sends last when a re-check ends it: a client whose session is over is
    told why; any other may simply reconnect."""
    if end in SESSION_ENDED_MESSAGES:
        return _session_ended(end)
    return f": stream closed ({end.value})\n\n"


def _catch_up(read_changes: ReadChanges, cursor: ChangeCursor) -> Iterator[str]:
    """What the stream's own cursor finds in the feed: the changes after the client's
    `Last-Event-ID` (nothing for a new client, whose cursor starts at the end)."""
    while updates := read_changes(cursor):
        yield "".join(event_text(update) for update in updates)


def stream_changes(
    read_changes: ReadChanges,
    fanout: ChangeFanout,
    after: int | None,
    max_seconds: float,
    kept: KeptStream | None = None,
    recheck_s: float = 5,
    keepalive_s: float = 15,
    direct: Callable[[], ChunkWriter | None] | None = None,
) -> Iterator[str | bytes]:
    """The stream's events: first its catch-up from `after`, then what the process's one
    change reader (`fanout`) finds, without the ids already sent. The process's re-check
    (`KeepStreamsOpen`) decides for all its streams every `recheck_s` whether each may go on;
    `kept` is where this stream learns it, and the re-check wakes the stream to end it. A
    keepalive goes out at least once per re-check, so a client that is gone is noticed (the
    write fails) and its slot freed within a few re-checks.

    `direct` is the server's offer to write to the client's socket itself
    (adapters/http/direct_writes): once the stream has nothing left to drop from the
    reader's batches, it asks for a writer and, given one, has the reader deliver the
    batches straight to it; from then on everything the stream sends goes through the
    writer, and the stream wakes only to flush what the socket could not take at once, to
    send a keepalive or to end."""
    keepalive_s = min(keepalive_s, recheck_s)
    subscription = fanout.subscribe()  # before the catch-up: nothing falls between the two
    if kept is not None:
        kept.wake = subscription.wake
    writer: ChunkWriter | None = None
    try:
        if after is None:  # from where the reader stands: it brings all that follows
            cursor, caught_up = subscription.start, CaughtUp.nothing()
        else:
            cursor = read_changes.cursor(after)
        yield f"retry: 2000\n: stream open at change {cursor.position}\n\n"
        started = last_sent = time.monotonic()
        if after is not None:
            yield from _catch_up(read_changes, cursor)
            caught_up = CaughtUp(cursor)
        while time.monotonic() - started < max_seconds:
            if kept is not None:
                kept.served = True  # it runs: the next re-check renews its lease
                if (end := kept.end) is not None:
                    if writer is None:
                        yield closing_event(end)
                    else:
                        writer.write(closing_event(end).encode())
                    return
            if subscription.lagging:
                if writer is None:
                    yield ": stream closed (fell behind; reconnect with Last-Event-ID)\n\n"
                else:  # its bytes piled up unread: what is waiting cannot be sent whole
                    writer.abort()
                return
            if writer is None and direct is not None and caught_up.done:
                # everything yielded so far is written: the server wrote each yield before
                # asking for the next
                writer, direct = direct(), None
                if writer is not None:
                    writer.wake = subscription.wake
                    subscription.deliver_directly(writer.deliver)
            if writer is not None:
                writer.flush()
                if writer.broken:
                    return
                last_sent = max(last_sent, writer.written_at)
            wake_at = min(started + max_seconds, last_sent + keepalive_s)
            batch = caught_up.unsent(
                subscription.next_batch(wake_at - time.monotonic()), subscription.floor
            )
            if batch:  # the bytes every stream shares
                yield RenderedUpdate.joined(batch)
                last_sent = time.monotonic()
            elif writer is not None:
                if time.monotonic() - max(last_sent, writer.written_at) >= keepalive_s:
                    writer.write(b": keepalive\n\n")
                    last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= keepalive_s:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
    finally:
        subscription.close()
        if writer is not None:
            writer.flush()  # the server's last chunk goes after what is waiting


class _SlotRelease:
    """Gives a stream's slot back once, whichever comes first: the stream's generator ending,
    or the server closing the response (also when the generator never started). The slot is
    the one the stream holds now: the re-check may have given it a new one."""

    def __init__(
        self, keep_streams_open: KeepStreamsOpen, close_stream: CloseStream, kept: KeptStream
    ) -> None:
        self.keep_streams_open, self.close_stream, self.kept = keep_streams_open, close_stream, kept
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        self.keep_streams_open.release(self.kept)
        try:
            self.close_stream(self.kept.lease)
        except Exception:  # the lease lapses by itself; the stream is over either way
            log.warning("could not free live stream slot %s", self.kept.lease.id, exc_info=True)


def _releasing(stream: Iterator[str | bytes], release: _SlotRelease) -> Iterator[str | bytes]:
    try:
        yield from stream
    finally:
        release()


@blp.route("")
class Events(MethodView):
    @requires(Permission.READ)
    @blp.arguments(EventQuerySchema, location="query")
    @blp.response(
        200,
        description="text/event-stream of `device`, `device_deleted`, `run`, `hold`, `queue` "
        "and `runner` events (queue data: length, items [kind, id, position, "
        "estimated_start_at]; runner data: id, read it with GET /api/runners); a last "
        "`session_ended` event (data: reason, message) when the session ends while it is open",
    )
    @blp.alt_response(429, "TOO_MANY_REQUESTS")
    @inject
    def get(
        self,
        args,
        read_changes: ReadChanges = Provide["read_changes"],
        fanout: ChangeFanout = Provide["change_fanout"],
        open_stream: OpenStream = Provide["open_stream"],
        keep_streams_open: KeepStreamsOpen = Provide["keep_streams_open"],
        close_stream: CloseStream = Provide["close_stream"],
        recheck_s: float = Provide["config.stream_recheck_s"],
    ):
        """Stream device, run and hold changes as they happen

        The stream re-checks its session every few seconds and ends with a `session_ended`
        event once the session is over. One user may hold a limited number of streams at
        once (429 with Retry-After beyond it)."""
        after = resume_after(args)
        return guarded_stream_response(
            open_stream,
            keep_streams_open,
            close_stream,
            lambda kept: stream_changes(
                read_changes,
                fanout,
                after,
                args["max_seconds"],
                kept=kept,
                recheck_s=recheck_s,
                direct=request.environ.get(DIRECT_WRITER),
            ),
        )


def guarded_stream_response(
    open_stream: OpenStream,
    keep_streams_open: KeepStreamsOpen,
    close_stream: CloseStream,
    make_stream: Callable[[KeptStream], Iterator[str | bytes]],
) -> Response:
    """An event-stream answer for the signed-in caller: it takes one of the caller's stream
    slots (429 when none is free), hands the stream to the process's re-check
    (`keep_streams_open`), gives `make_stream` the `KeptStream` through which it learns
    whether it may go on, and frees the slot however the stream ends. Every live stream of
    the API opens this way (this one, and a run's log: adapters/http/run_log_stream.py)."""
    token = bearer_token(request)
    kept = keep_streams_open.keep(token, open_stream(current_principal().user_id))
    release = _SlotRelease(keep_streams_open, close_stream, kept)
    try:
        stream = make_stream(kept)
        response = Response(
            stream_with_context(_releasing(stream, release)),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    except BaseException:
        release()
        raise
    response.call_on_close(release)
    return response
