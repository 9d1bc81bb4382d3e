"""/api/health-checks: the test cases the worker runs by itself on the devices they designate
(docs/health-checks.md). Anyone may read them; only admins (Permission.MANAGE_HEALTH) change
them: a designation makes the lab start runs on every matching device."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.security import requires
from application.use_cases.health_checks import (
    CreateHealthCheck,
    DeleteHealthCheck,
    GetHealthCheck,
    HealthCheckInput,
    ListHealthChecks,
    UpdateHealthCheck,
)
from domain.health_checks import MAX_EVERY_HOURS, MAX_EVERY_RUNS
from domain.users import Permission

blp = Blueprint(
    "health_checks",
    __name__,
    url_prefix="/api/health-checks",
    description="Health checks the worker runs on the devices",
)

_id = validate.Length(min=1, max=64)
_labels = fields.Dict(
    keys=fields.String(validate=validate.Length(min=1, max=100)),
    values=fields.String(validate=validate.Length(max=500)),
    validate=validate.Length(max=20),
    metadata={"description": "devices with every one of these labels (same value)"},
)
_every_hours = fields.Float(
    allow_none=True,
    validate=validate.Range(min=0, min_inclusive=False, max=MAX_EVERY_HOURS),
    metadata={"description": "run it when the device's last check is this many hours old"},
)
_every_runs = fields.Integer(
    allow_none=True,
    strict=True,
    validate=validate.Range(min=1, max=MAX_EVERY_RUNS),
    metadata={"description": "run it after this many other runs on the device"},
)
_after_service = fields.Boolean(
    metadata={"description": "run it when the device comes back from maintenance or offline"}
)


class HealthCheckSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String()
    test_case_id = fields.String()
    environment_id = fields.String()
    model = fields.String(metadata={"description": "devices of this model (empty: any)"})
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    every_hours = fields.Float(allow_none=True)
    every_runs = fields.Integer(allow_none=True)
    after_service = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class HealthCheckWriteSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    test_case_id = fields.String(required=True, validate=_id)
    environment_id = fields.String(required=True, validate=_id)
    model = fields.String(load_default="", validate=validate.Length(max=200))
    labels = _labels
    every_hours = _every_hours
    every_runs = _every_runs
    after_service = _after_service


class HealthCheckPatchSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    test_case_id = fields.String(validate=_id)
    environment_id = fields.String(validate=_id)
    model = fields.String(validate=validate.Length(max=200))
    labels = _labels
    every_hours = _every_hours
    every_runs = _every_runs
    after_service = _after_service


@blp.route("")
class HealthChecks(MethodView):
    @requires(Permission.READ)
    @blp.response(200, HealthCheckSchema(many=True))
    @inject
    def get(self, list_checks: ListHealthChecks = Provide["list_health_checks"]):
        """List the health-check designations, by name"""
        return list_checks()

    @requires(Permission.MANAGE_HEALTH)
    @blp.arguments(HealthCheckWriteSchema)
    @blp.response(201, HealthCheckSchema)
    @inject
    def post(self, data, create: CreateHealthCheck = Provide["create_health_check"]):
        """Designate a health check (admins)

        Give a model, labels or both, and when: `every_hours`, `every_runs` and/or
        `after_service` (default true)."""
        return create(HealthCheckInput(**data))


@blp.route("/<check_id>")
class HealthCheckById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, HealthCheckSchema)
    @inject
    def get(self, check_id, get_check: GetHealthCheck = Provide["get_health_check"]):
        """Get one health-check designation"""
        return get_check(check_id)

    @requires(Permission.MANAGE_HEALTH)
    @blp.arguments(HealthCheckPatchSchema)
    @blp.response(200, HealthCheckSchema)
    @inject
    def patch(self, changes, check_id, update: UpdateHealthCheck = Provide["update_health_check"]):
        """Change a health-check designation (admins)"""
        return update(check_id, changes)

    @requires(Permission.MANAGE_HEALTH)
    @blp.response(204)
    @inject
    def delete(self, check_id, delete: DeleteHealthCheck = Provide["delete_health_check"]):
        """Remove a health-check designation (admins); its runs stay"""
        delete(check_id)
