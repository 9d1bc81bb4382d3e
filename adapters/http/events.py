"""/api/events: live device and run changes as Server-Sent Events.

Each event carries the changed device or run in the same shape as the REST API, and the id
of the change, so a client that reconnects with `Last-Event-ID` (or `?after=`) misses
nothing. The stream reads the database's change log, which every API process and worker
writes in the transaction of the change: it works the same with one process or many, with
or without a broker. A stream ends after `max_seconds`; clients reconnect (the `retry` hint
tells them how soon)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from dependency_injector.wiring import Provide, inject
from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.devices import DeviceSchema
from adapters.http.security import requires
from adapters.http.test_runs import TestRunSchema
from application.use_cases.live_updates import ReadChanges, Update
from domain.users import Permission

blp = Blueprint(
    "events", __name__, url_prefix="/api/events", description="Live changes (Server-Sent Events)"
)


class EventQuerySchema(Schema):
    after = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "resume after this event id (same as Last-Event-ID)"},
    )
    max_seconds = fields.Integer(
        load_default=300,
        validate=validate.Range(min=1, max=3600),
        metadata={"description": "close the stream after this long; clients reconnect"},
    )


def _event(update: Update) -> str:
    change = update.change
    if change.kind == "device":
        if update.device is None:
            name, data = "device_deleted", {"id": change.entity_id}
        else:
            name, data = "device", DeviceSchema().dump(update.device)
    else:
        if update.run is None:
            return ""
        name, data = "run", TestRunSchema().dump(update.run)
    return f"id: {change.id}\nevent: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def stream_changes(
    read_changes: ReadChanges,
    after: int | None,
    max_seconds: float,
    poll_s: float = 0.5,
    keepalive_s: float = 15,
) -> Iterator[str]:
    cursor = read_changes.cursor(after)
    yield f"retry: 2000\n: stream open at change {cursor.position}\n\n"
    started = last_sent = time.monotonic()
    while time.monotonic() - started < max_seconds:
        updates = read_changes(cursor)
        chunk = "".join(_event(update) for update in updates)
        if chunk:
            yield chunk
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= keepalive_s:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        time.sleep(poll_s)


@blp.route("")
class Events(MethodView):
    @requires(Permission.READ)
    @blp.arguments(EventQuerySchema, location="query")
    @blp.response(200, description="text/event-stream of `device`, `device_deleted` and `run`")
    @inject
    def get(self, args, read_changes: ReadChanges = Provide["read_changes"]):
        """Stream device and run changes as they happen"""
        after = args.get("after")
        last_event_id = request.headers.get("Last-Event-ID", "")
        if after is None and last_event_id.isdigit():
            after = int(last_event_id)
        stream = stream_changes(read_changes, after, args["max_seconds"])
        return Response(
            stream_with_context(stream),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
