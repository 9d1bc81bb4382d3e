"""/api/queue: the runs waiting for their devices, in the order they will get them."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from adapters.http.json_bodies import iso, json_response
from adapters.http.security import requires
from adapters.http.test_runs import TestRunSchema, WaitingForSchema, run_json, waiting_for_json
from application.use_cases.scheduling import GetQueue
from domain.users import Permission

blp = Blueprint("queue", __name__, url_prefix="/api/queue", description="The lab queue")


class QueueEntrySchema(Schema):
    position = fields.Integer(metadata={"description": "1-based: 1 gets its devices first"})
    run = fields.Nested(TestRunSchema)
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
        """The waiting runs in queue order (priority, then first come first served), each
        with its position and what it waits for"""
        items = [
            {
                "position": entry.position,
                "run": run_json(entry.run, entry),
                "waiting_for": waiting_for_json(entry.waiting_for),
                "estimated_start_at": iso(entry.run.estimated_start_at),
            }
            for entry in get_queue()
        ]
        return json_response({"items": items})
