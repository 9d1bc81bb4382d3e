"""/api/queue: the runs and holds waiting for their devices, in the order they will get them."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from adapters.http.holds import HoldSchema, hold_json
from adapters.http.json_bodies import iso, json_response
from adapters.http.security import requires
from adapters.http.test_runs import TestRunSchema, WaitingForSchema, run_json, waiting_for_json
from application.use_cases.scheduling import GetQueue
from domain.scheduling import ItemKind
from domain.users import Permission

blp = Blueprint("queue", __name__, url_prefix="/api/queue", description="The lab queue")


class QueueEntrySchema(Schema):
    position = fields.Integer(metadata={"description": "1-based: 1 gets its devices first"})
    kind = fields.String(metadata={"enum": [k.value for k in ItemKind]})
    run = fields.Nested(TestRunSchema, allow_none=True, metadata={"description": "kind run"})
    hold = fields.Nested(HoldSchema, allow_none=True, metadata={"description": "kind hold"})
    waiting_for = fields.Nested(WaitingForSchema, allow_none=True)
    estimated_start_at = fields.DateTime(
        allow_none=True,
        metadata={
            "description": "when it is expected to get its devices (the worker's estimate "
            "after its last scheduling pass); null when it cannot be told"
        },
    )


class QueueSchema(Schema):
    items = fields.List(fields.Nested(QueueEntrySchema))


@blp.route("")
class Queue(MethodView):
    @requires(Permission.READ)
    @blp.response(200, QueueSchema)
    @inject
    def get(self, get_queue: GetQueue = Provide["get_queue"]):
        """The waiting runs and holds in one queue order (priority, then first come first
        served), each with its position and what it waits for"""
        items = [
            {
                "position": entry.position,
                "kind": entry.kind.value,
                "run": run_json(entry.run, entry) if entry.run is not None else None,
                "hold": hold_json(entry.hold, entry) if entry.hold is not None else None,
                "waiting_for": waiting_for_json(entry.waiting_for),
                "estimated_start_at": iso((entry.run or entry.hold).estimated_start_at),
            }
            for entry in get_queue()
        ]
        return json_response({"items": items})
