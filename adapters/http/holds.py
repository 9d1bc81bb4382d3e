"""/api/holds: devices kept for manual work at the bench, through the same queue as runs."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.json_bodies import iso, json_response
from adapters.http.pagination import PageQuerySchema, page_schema
from adapters.http.security import current_actor, current_principal, requires
from adapters.http.test_runs import (
    PRIORITIES,
    DeviceRequestSchema,
    WaitingForSchema,
    request_json,
    waiting_for_json,
)
from application.ports import HoldFilter
from application.use_cases.admission import WHEN_BUSY
from application.use_cases.holds import (
    Actor,
    ExtendHold,
    GetHold,
    ListHolds,
    PlaceHold,
    PlaceHoldRequest,
    ReleaseHold,
)
from application.use_cases.scheduling import GetQueue, QueueEntry
from domain.holds import MAX_REASON_LENGTH, MIN_EXTENSION_S, MIN_HOLD_S, Hold, HoldStatus
from domain.scheduling import MAX_REQUESTS, DeviceRequest, Priority
from domain.users import Permission

blp = Blueprint("holds", __name__, url_prefix="/api/holds", description="Holds: manual work")

STATUSES = [s.value for s in HoldStatus]
_LONGEST_S = 366 * 24 * 3600  # beyond any maximum hold a lab would configure


class HeldDeviceSchema(Schema):
    id = fields.String()
    name = fields.String()
    model = fields.String()
    role = fields.String(allow_none=True)


class HoldSchema(Schema):
    id = fields.String()
    status = fields.String(metadata={"enum": STATUSES})
    holder = fields.String(metadata={"description": "who placed the hold"})
    reason = fields.String()
    priority = fields.String(metadata={"enum": PRIORITIES})
    duration_s = fields.Integer()
    device_ids = fields.List(
        fields.String(), metadata={"description": "the devices it named (devices: those it has)"}
    )
    device_requests = fields.List(fields.Nested(DeviceRequestSchema))
    devices = fields.List(
        fields.Nested(HeldDeviceSchema),
        metadata={"description": "the devices it holds (or held); [] while waiting"},
    )
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)
    ended_by = fields.String(allow_none=True)
    end_reason = fields.String(
        allow_none=True,
        metadata={
            "description": "released, expired, cancelled, queue timeout or unsatisfiable: ..."
        },
    )
    position = fields.Integer(
        allow_none=True, metadata={"description": "1-based place in the queue while waiting"}
    )
    estimated_start_at = fields.DateTime(
        allow_none=True,
        metadata={
            "description": "while waiting: when it is expected to get its devices, as the "
            "worker last estimated it (docs/scheduling.md); null when it cannot be told, not "
            "estimated yet, or not waiting"
        },
    )
    waiting_for = fields.Nested(WaitingForSchema, allow_none=True)
    version = fields.Integer()


def hold_json(hold: Hold, queued: QueueEntry | None = None) -> dict[str, Any]:
    """A hold as the API shows it; `queued` is its place in the queue while it waits."""
    return {
        "id": hold.id,
        "status": hold.status.value,
        "holder": hold.holder,
        "reason": hold.reason,
        "priority": hold.priority.value,
        "duration_s": hold.duration_s,
        "device_ids": list(hold.requested_device_ids),
        "device_requests": [request_json(r) for r in hold.device_requests],
        "devices": [
            {"id": d.id, "name": d.name, "model": d.model, "role": d.role} for d in hold.devices
        ],
        "created_at": iso(hold.created_at),
        "started_at": iso(hold.started_at),
        "expires_at": iso(hold.expires_at),
        "ended_at": iso(hold.ended_at),
        "ended_by": hold.ended_by,
        "end_reason": hold.end_reason,
        "position": queued.position if queued else None,
        "estimated_start_at": iso(hold.estimated_start_at) if hold.waiting else None,
        "waiting_for": waiting_for_json(queued.waiting_for) if queued else None,
        "version": hold.version,
    }


def _places(holds: list[Hold], get_queue: GetQueue) -> dict[str, QueueEntry]:
    """Positions only when some hold of the answer waits: it costs a look at the queue."""
    if not any(hold.waiting for hold in holds):
        return {}
    return {entry.id: entry for entry in get_queue()}


def _answer(hold: Hold, get_queue: GetQueue, status: int = 200):
    return json_response(hold_json(hold, _places([hold], get_queue).get(hold.id)), status)


def _actor() -> Actor:
    """The caller; an admin (signed in, or with a full-scope token) may end or extend anyone's
    hold, anyone else only their own."""
    return Actor(current_actor(), may_end_any=current_principal().can(Permission.MANAGE_HOLDS))


class PlaceHoldSchema(Schema):
    device_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)),
        load_default=list,
        validate=validate.Length(max=200),
        metadata={"description": "devices by id; with device_requests, at least one device"},
    )
    device_requests = fields.List(
        fields.Nested(DeviceRequestSchema),
        load_default=list,
        validate=validate.Length(max=MAX_REQUESTS),
    )
    duration_s = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=MIN_HOLD_S, max=_LONGEST_S),
        metadata={"description": f"{MIN_HOLD_S} s up to DEVICELAB_MAX_HOLD_S (default 8 h)"},
    )
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_REASON_LENGTH),
        metadata={"description": "what the devices are held for"},
    )
    priority = fields.String(
        load_default=Priority.NORMAL.value, validate=validate.OneOf(PRIORITIES)
    )
    when_busy = fields.String(
        load_default="queue",
        validate=validate.OneOf(WHEN_BUSY),
        metadata={"description": "queue (default): wait for busy devices; reject: 409"},
    )
    queue_timeout_s = fields.Float(
        load_default=None,
        allow_none=True,
        allow_nan=False,
        validate=validate.Range(min=1, max=30 * 24 * 3600),
        metadata={"description": "how long it may wait (default DEVICELAB_QUEUE_TIMEOUT_S)"},
    )


class HoldQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    holder = fields.String(validate=validate.Length(min=1, max=320))
    device_id = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "holds that have (or had) this device"},
    )


class ExtendSchema(Schema):
    by_s = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=MIN_EXTENSION_S, max=_LONGEST_S),
        metadata={
            "description": "seconds added to the expiry (at most DEVICELAB_MAX_HOLD_S "
            "from now in all)"
        },
    )


HoldPageSchema = page_schema(HoldSchema, "HoldPageSchema")


@blp.route("")
class Holds(MethodView):
    @requires(Permission.READ)
    @blp.arguments(HoldQuerySchema, location="query")
    @blp.response(200, HoldPageSchema)
    @inject
    def get(
        self,
        args,
        list_holds: ListHolds = Provide["list_holds"],
        get_queue: GetQueue = Provide["get_queue"],
    ):
        """Holds, newest first, filtered"""
        where = HoldFilter(
            status=HoldStatus(args["status"]) if args.get("status") else None,
            holder=args.get("holder"),
            device_id=args.get("device_id"),
        )
        page = list_holds(where, args["limit"], args["cursor"])
        places = _places(page.items, get_queue)
        items = [hold_json(hold, places.get(hold.id)) for hold in page.items]
        return json_response({"items": items, "next_cursor": page.next_cursor})

    @requires(Permission.RUN_TESTS)
    @blp.arguments(PlaceHoldSchema)
    @blp.response(201, HoldSchema)
    @blp.alt_response(409, description="when_busy=reject: devices are not available now (listed)")
    @blp.alt_response(
        422,
        description="unknown or retired devices, a request the lab cannot "
        "satisfy, a duration beyond DEVICELAB_MAX_HOLD_S",
    )
    @inject
    def post(
        self,
        data,
        place: PlaceHold = Provide["place_hold"],
        get_queue: GetQueue = Provide["get_queue"],
    ):
        """Hold devices for manual work: active at once on free devices, else it waits in
        the queue with the runs"""
        requests = [DeviceRequest(**r) for r in data.pop("device_requests")]
        hold = place(PlaceHoldRequest(**data, device_requests=requests, holder=current_actor()))
        return _answer(hold, get_queue, 201)


@blp.route("/<hold_id>")
class HoldById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, HoldSchema)
    @inject
    def get(
        self,
        hold_id,
        get_hold: GetHold = Provide["get_hold"],
        get_queue: GetQueue = Provide["get_queue"],
    ):
        """One hold (with its place in the queue while it waits)"""
        return _answer(get_hold(hold_id), get_queue)

    @requires(Permission.RUN_TESTS)
    @blp.response(200, HoldSchema)
    @blp.alt_response(403, description="neither the holder nor an admin")
    @blp.alt_response(409, description="the hold has already ended")
    @inject
    def delete(self, hold_id, release: ReleaseHold = Provide["release_hold"]):
        """End a hold: released if it held its devices, cancelled while it waited

        Only its holder or an admin."""
        return json_response(hold_json(release(hold_id, _actor())))


@blp.route("/<hold_id>/extend")
class HoldExtension(MethodView):
    @requires(Permission.RUN_TESTS)
    @blp.arguments(ExtendSchema)
    @blp.response(200, HoldSchema)
    @blp.alt_response(403, description="neither the holder nor an admin")
    @blp.alt_response(409, description="the hold is not active")
    @blp.alt_response(422, description="it would end more than DEVICELAB_MAX_HOLD_S from now")
    @inject
    def post(self, data, hold_id, extend: ExtendHold = Provide["extend_hold"]):
        """Keep the devices longer: a later expiry for an active hold

        Only its holder or an admin."""
        return json_response(hold_json(extend(hold_id, data["by_s"], _actor())))
