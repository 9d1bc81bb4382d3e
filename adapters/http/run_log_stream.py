"""GET /api/test-runs/{id}/logs/stream: a run's log as it grows, as Server-Sent Events.

Each `log` event carries one line (as in GET …/logs) with its sequence number as the event
id, so a client that reconnects with `Last-Event-ID` (or `?after=`) goes on after the last
line it has. The stream polls the log after its cursor and sleeps between polls; once the
run has finished and every line has been sent it sends `end` and closes (a finished run
takes no more lines). It opens, re-checks its session and counts against the caller's
stream cap exactly like /api/events (adapters/http/events.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint

from adapters.http.events import (
    EventQuerySchema,
    closing_event,
    guarded_stream_response,
    resume_after,
)
from adapters.http.run_logs import LogFilterSchema, line_json, log_filter
from adapters.http.security import requires
from application.run_log_ports import LogFilter
from application.use_cases.live_streams import (
    CloseStream,
    KeepStreamsOpen,
    KeptStream,
    OpenStream,
)
from application.use_cases.run_logs import ReadLogTail
from domain.users import Permission

blp = Blueprint(
    "run_log_stream", __name__, url_prefix="/api/test-runs", description="Run logs, live"
)


class LogStreamQuerySchema(EventQuerySchema, LogFilterSchema):
    """`after` is a line number here (the event ids of this stream)."""


def _sse(line_event: dict) -> str:
    data = json.dumps(line_event, separators=(",", ":"))
    return f"id: {line_event['seq']}\nevent: log\ndata: {data}\n\n"


def stream_log(
    read_tail: ReadLogTail,
    run_id: str,
    where: LogFilter,
    after: int,
    max_seconds: float,
    kept: KeptStream | None = None,
    recheck_s: float = 5,
    poll_s: float = 0.5,
    keepalive_s: float = 15,
) -> Iterator[str]:
    """The log's events. The process's re-check (`KeepStreamsOpen`) says through `kept`
    whether the stream may go on; it is looked at before every poll, so an ended session
    stops the stream within `poll_s` of the re-check."""
    poll_s, keepalive_s = min(poll_s, recheck_s), min(keepalive_s, recheck_s)
    yield f"retry: 2000\n: log stream open after line {after}\n\n"
    started = last_sent = time.monotonic()
    while time.monotonic() - started < max_seconds:
        if kept is not None:
            kept.served = True  # it runs: the next re-check renews its lease
            if (end := kept.end) is not None:
                yield closing_event(end)
                return
        tail = read_tail(run_id, after, where)
        if tail.lines:
            after = tail.lines[-1].seq
            yield "".join(_sse(line_json(line)) for line in tail.lines)
            last_sent = time.monotonic()
            continue  # there may be more right away
        if tail.finished:
            yield "event: end\ndata: {}\n\n"
            return
        if time.monotonic() - last_sent >= keepalive_s:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        time.sleep(poll_s)


@blp.route("/<run_id>/logs/stream")
class RunLogStream(MethodView):
    @requires(Permission.READ)
    @blp.arguments(LogStreamQuerySchema, location="query")
    @blp.response(
        200,
        description="text/event-stream of `log` events (data: a log line; id: its number), "
        "then `end` once the run has finished and every line was sent; `session_ended` as "
        "on /api/events",
    )
    @blp.alt_response(429, "TOO_MANY_REQUESTS")
    @inject
    def get(
        self,
        args,
        run_id,
        read_tail: ReadLogTail = Provide["read_log_tail"],
        open_stream: OpenStream = Provide["open_stream"],
        keep_streams_open: KeepStreamsOpen = Provide["keep_streams_open"],
        close_stream: CloseStream = Provide["close_stream"],
        recheck_s: float = Provide["config.stream_recheck_s"],
    ):
        """Follow a run's log as it grows"""
        after = resume_after(args)
        where = log_filter(args)
        read_tail(run_id, 0, where)  # 404 for an unknown run, before the stream opens
        return guarded_stream_response(
            open_stream,
            keep_streams_open,
            close_stream,
            lambda kept: stream_log(
                read_tail,
                run_id,
                where,
                after or 0,
                args["max_seconds"],
                kept=kept,
                recheck_s=recheck_s,
            ),
        )
