"""/api/devices: the lab's devices, their status and its history."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.answer_cache import keep_answer, kept_answer
from adapters.http.json_bodies import iso, json_response
from adapters.http.list_etags import LIST_ETAG_DOC, list_etag, not_modified, with_etag
from adapters.http.pagination import PageQuerySchema, page_schema
from adapters.http.security import current_actor, current_principal, requires
from application.ports import DeviceFilter
from application.use_cases.devices import (
    SETTABLE_STATUSES,
    DeleteDevice,
    GetDevice,
    GetDeviceHistory,
    ListDevices,
    RecordHeartbeat,
    RegisterDevice,
    RegisterDeviceRequest,
    SetDeviceStatus,
    SetDeviceStatusRequest,
    UpdateDevice,
)
from application.use_cases.health_checks import ClearDeviceHealth
from application.use_cases.lab_version import ReadLabVersion
from domain.devices import Device, DeviceStatus, ServiceNote, ServiceState
from domain.health import DeviceHealth, HealthNote
from domain.holds import HoldNote
from domain.users import Permission

blp = Blueprint("devices", __name__, url_prefix="/api/devices", description="Lab devices")

STATUSES = [s.value for s in DeviceStatus]
_short = validate.Length(max=200)
_labels = fields.Dict(
    keys=fields.String(validate=validate.Length(min=1, max=100)),
    values=fields.String(validate=validate.Length(max=500)),
    validate=validate.Length(max=50),
)


class ServiceNoteSchema(Schema):
    by = fields.String()
    reason = fields.String()
    since = fields.DateTime()


class HealthNoteSchema(Schema):
    run_id = fields.String(allow_none=True)
    reason = fields.String()
    by = fields.String()
    since = fields.DateTime()


class HoldNoteSchema(Schema):
    id = fields.String(attribute="hold_id")
    holder = fields.String()
    until = fields.DateTime()
    reason = fields.String()


class DeviceSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String()
    model = fields.String()
    serial = fields.String()
    firmware_version = fields.String()
    location = fields.String()
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    status = fields.Function(lambda d: d.status.value, metadata={"enum": STATUSES})
    run_id = fields.String(
        attribute="held_by",
        allow_none=True,
        metadata={"description": "the test run (or, status held, the hold) that has the device"},
    )
    hold = fields.Nested(
        HoldNoteSchema,
        allow_none=True,
        metadata={
            "description": "while a hold has the device (status held): which, who, "
            "until when and why"
        },
    )
    offline_pending = fields.Boolean(
        metadata={
            "description": "set offline (or silent) while in test: offline once its run ends"
        },
    )
    drain_pending = fields.Boolean(
        metadata={
            "description": "set to maintenance while in test: in maintenance once its run ends"
        },
    )
    service_state = fields.String(
        metadata={
            "enum": [s.value for s in ServiceState],
            "description": "in_service, or why not: silent (no heartbeats; the next one "
            "brings it back), offline (by hand), maintenance, retired; the last three stay "
            "until a person changes them",
        }
    )
    out_of_service = fields.Nested(
        ServiceNoteSchema,
        attribute="service_note",
        allow_none=True,
        metadata={"description": "who took the device out of service, why and since when"},
    )
    health = fields.String(
        metadata={
            "enum": [h.value for h in DeviceHealth],
            "description": "what its health checks say: good, unknown (never checked, or "
            "cleared), bad (its last health check failed: booked for health checks only "
            "until cleared or a later check passes)",
        }
    )
    health_note = fields.Nested(
        HealthNoteSchema,
        allow_none=True,
        metadata={"description": "what set the health: the health-check run, or who cleared it"},
    )
    last_seen_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class DeviceCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    model = fields.String(load_default="", validate=_short)
    serial = fields.String(load_default="", validate=_short)
    firmware_version = fields.String(load_default="", validate=_short)
    location = fields.String(load_default="", validate=_short)
    labels = _labels
    status = fields.String(
        load_default="available",
        validate=validate.OneOf(["available", "offline"]),
        metadata={"description": "initial status: available (default) or offline"},
    )


class DeviceUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    model = fields.String(validate=_short)
    serial = fields.String(validate=_short)
    firmware_version = fields.String(validate=_short)
    location = fields.String(validate=_short)
    labels = _labels


class DeviceQuerySchema(PageQuerySchema):
    status = fields.String(
        validate=validate.OneOf(STATUSES),
        metadata={"description": "only devices with this status (`retired` lists those)"},
    )
    include_retired = fields.Boolean(
        load_default=False,
        metadata={"description": "without a status filter, list retired devices too"},
    )
    q = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "text in name, serial, model, location, firmware"},
    )
    label = fields.String(
        validate=validate.Length(min=1, max=600),
        metadata={"description": "`key` or `key:value`"},
    )


# one instance for every request: given the class, webargs would make one per request (a
# twentieth of a device list request's time)
DEVICE_QUERY = DeviceQuerySchema()


class StatusChangeRequestSchema(Schema):
    status = fields.String(
        required=True,
        metadata={
            "enum": SETTABLE_STATUSES,
            "description": "in_test and held are never set by hand; starting a run or a hold "
            "sets them. On a device "
            "in test, offline and maintenance apply when its run ends (maintenance drains "
            "it), and available cancels that",
        },
    )
    reason = fields.String(
        load_default="",
        validate=validate.Length(max=500),
        metadata={"description": "required for maintenance and retired"},
    )


class HeartbeatSchema(Schema):
    firmware_version = fields.String(load_default=None, validate=_short)


class StatusChangeSchema(Schema):
    at = fields.DateTime()
    from_status = fields.Function(lambda c: c.from_status.value)
    to_status = fields.Function(lambda c: c.to_status.value)
    actor = fields.String()
    reason = fields.String()
    run_id = fields.String(allow_none=True)


class HistoryQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


DevicePageSchema = page_schema(DeviceSchema, "DevicePageSchema")


def _note_json(note: ServiceNote | None) -> dict[str, Any] | None:
    if note is None:
        return None
    return {"by": note.by, "reason": note.reason, "since": iso(note.since)}


def _health_json(note: HealthNote | None) -> dict[str, Any] | None:
    if note is None:
        return None
    return {"run_id": note.run_id, "reason": note.reason, "by": note.by, "since": iso(note.since)}


def _hold_json(note: HoldNote | None) -> dict[str, Any] | None:
    if note is None:
        return None
    return {
        "id": note.hold_id,
        "holder": note.holder,
        "until": iso(note.until),
        "reason": note.reason,
    }


def device_json(device: Device) -> dict[str, Any]:
    """What DeviceSchema dumps (see adapters/http/json_bodies.py). The enums' values are read
    as `_value_` (the member's own attribute, what `.value` returns through a descriptor) and
    the three timestamps and the notes without a call each when absent: a page builds 50."""
    hold, note, health_note = device.hold, device.service_note, device.health_note
    last_seen_at, created_at, updated_at = (
        device.last_seen_at,
        device.created_at,
        device.updated_at,
    )
    return {
        "id": device.id,
        "name": device.name,
        "model": device.model,
        "serial": device.serial,
        "firmware_version": device.firmware_version,
        "location": device.location,
        "labels": dict(device.labels),
        "status": device.status._value_,
        "run_id": device.held_by,
        "hold": None if hold is None else _hold_json(hold),
        "offline_pending": device.offline_pending,
        "drain_pending": device.drain_pending,
        "service_state": device.service_state._value_,
        "out_of_service": None if note is None else _note_json(note),
        "health": device.health._value_,
        "health_note": None if health_note is None else _health_json(health_note),
        "last_seen_at": None if last_seen_at is None else last_seen_at.isoformat(),
        "created_at": None if created_at is None else created_at.isoformat(),
        "updated_at": None if updated_at is None else updated_at.isoformat(),
    }


@blp.route("")
class Devices(MethodView):
    @requires(Permission.READ)
    @blp.arguments(DEVICE_QUERY, location="query")
    @blp.response(200, DevicePageSchema)
    @blp.doc(**LIST_ETAG_DOC)
    @inject
    def get(
        self,
        args,
        list_devices: ListDevices = Provide["list_devices"],
        lab_version: ReadLabVersion = Provide["read_lab_version"],
    ):
        """List devices, filtered, one page at a time"""
        label = None
        if args.get("label"):
            key, sep, value = args["label"].partition(":")
            label = (key, value if sep else None)
        where = DeviceFilter(
            status=DeviceStatus(args["status"]) if args.get("status") else None,
            text=args.get("q") or None,
            label=label,
            include_retired=args["include_retired"],
        )
        ready, tag = None, ""

        def known(version: str) -> bool:  # 304 if the client has it, or the answer as kept
            nonlocal ready, tag
            tag = list_etag(version, args)
            ready = not_modified(tag) or kept_answer(version, args)
            return ready is not None

        version, page = lab_version.then_read(
            known, lambda uow: list_devices.read(uow, where, args["limit"], args["cursor"])
        )
        if page is None:
            return ready if ready.status_code == 304 else with_etag(ready, tag)
        items = [device_json(device) for device in page.items]
        body = json_response({"items": items, "next_cursor": page.next_cursor})
        keep_answer(version, args, body)
        return with_etag(body, tag)

    @requires(Permission.MANAGE_DEVICES)
    @blp.arguments(DeviceCreateSchema)
    @blp.response(201, DeviceSchema)
    @inject
    def post(self, data, register_device: RegisterDevice = Provide["register_device"]):
        """Register a device"""
        status = data.pop("status")
        return register_device(
            RegisterDeviceRequest(**data, offline=status == "offline", actor=current_actor())
        )


@blp.route("/<device_id>")
class DeviceById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, DeviceSchema)
    @inject
    def get(self, device_id, get_device: GetDevice = Provide["get_device"]):
        """Get one device"""
        return json_response(device_json(get_device(device_id)))

    @requires(Permission.MANAGE_DEVICES)
    @blp.arguments(DeviceUpdateSchema)
    @blp.response(200, DeviceSchema)
    @inject
    def patch(self, changes, device_id, update_device: UpdateDevice = Provide["update_device"]):
        """Change a device's details (not its status)"""
        return update_device(device_id, changes)

    @requires(Permission.MANAGE_DEVICES)
    @blp.response(204)
    @inject
    def delete(self, device_id, delete_device: DeleteDevice = Provide["delete_device"]):
        """Remove a device; refused (409) while it is in a test run"""
        delete_device(device_id)


@blp.route("/<device_id>/status")
class DeviceStatusOverride(MethodView):
    @requires(Permission.OPERATE_DEVICES)
    @blp.arguments(StatusChangeRequestSchema)
    @blp.response(200, DeviceSchema)
    @inject
    def post(self, data, device_id, set_status: SetDeviceStatus = Provide["set_device_status"]):
        """Take a device out of service (offline, maintenance, retired) or bring it back

        Engineers and admins; only an admin brings a retired device back."""
        return set_status(
            SetDeviceStatusRequest(
                device_id,
                data["status"],
                data["reason"],
                current_actor(),
                may_unretire=current_principal().can(Permission.MANAGE_DEVICES),
            )
        )


@blp.route("/<device_id>/heartbeat")
class DeviceHeartbeat(MethodView):
    @requires(Permission.OPERATE_DEVICES)
    @blp.arguments(HeartbeatSchema)
    @blp.response(200, DeviceSchema)
    @inject
    def post(self, data, device_id, heartbeat: RecordHeartbeat = Provide["record_heartbeat"]):
        """Record that the device reported in (optionally with its firmware version)"""
        return heartbeat(device_id, data["firmware_version"])


@blp.route("/<device_id>/history")
class DeviceHistory(MethodView):
    @requires(Permission.READ)
    @blp.arguments(HistoryQuerySchema, location="query")
    @blp.response(200, StatusChangeSchema(many=True))
    @inject
    def get(self, args, device_id, history: GetDeviceHistory = Provide["get_device_history"]):
        """The device's status changes, newest first"""
        return history(device_id, args["limit"])


class ClearHealthSchema(Schema):
    reason = fields.String(
        load_default="",
        validate=validate.Length(max=500),
        metadata={"description": "what was looked at or fixed (kept on the device)"},
    )


@blp.route("/<device_id>/health/clear")
class DeviceHealthClear(MethodView):
    @requires(Permission.OPERATE_DEVICES)
    @blp.arguments(ClearHealthSchema)
    @blp.response(200, DeviceSchema)
    @inject
    def post(self, data, device_id, clear: ClearDeviceHealth = Provide["clear_device_health"]):
        """Put a bad device back into booking (its health is unknown until its next check)

        Engineers and admins; 409 when the device is not bad."""
        return json_response(device_json(clear(device_id, current_actor(), data["reason"])))
