"""/api/health (liveness) and /api/ready (can we reach what we depend on).

Readiness tells a load balancer whether to send this replica requests. Only what the API
cannot serve without makes it 503: the database (and the auth store or auth service, which
every request's token needs). A check that is not `critical` (the broker: starts still work,
their jobs wait in the outbox until it is back) only degrades it: 200 with its name under
`degraded`, so a broker blip does not take every replica out of the load balancer."""

from __future__ import annotations

from typing import Protocol

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from adapters.http.security import public

blp = Blueprint("health", __name__, url_prefix="/api", description="Liveness and readiness")


class ReadinessCheck(Protocol):
    name: str
    critical: bool  # False: the API still serves (degraded) while this one fails

    def check(self) -> str | None:
        """None when healthy, else a short description of the problem."""
        ...


class HealthSchema(Schema):
    status = fields.String()


class ReadySchema(Schema):
    status = fields.String(metadata={"enum": ["ready", "degraded", "not_ready"]})
    checks = fields.Dict(keys=fields.String(), values=fields.String())
    degraded = fields.List(
        fields.String(), metadata={"description": "failing checks the API serves without"}
    )
    unavailable = fields.List(
        fields.String(), metadata={"description": "failing checks the API cannot serve without"}
    )


@blp.route("/health")
@public
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is up"""
        return {"status": "ok"}


@blp.route("/ready")
@public
class Ready(MethodView):
    @blp.response(200, ReadySchema)
    @blp.alt_response(
        503, schema=ReadySchema, description="a dependency the API cannot serve without is away"
    )
    @inject
    def get(self, checks: list[ReadinessCheck] = Provide["readiness_checks"]):
        """The database answers (200 `degraded` when only the broker does not)"""
        results, degraded, unavailable = {}, [], []
        for check in checks:
            try:
                problem = check.check()
            except Exception as error:  # a probe must report, never crash the endpoint
                problem = f"{type(error).__name__}: {error}"
            results[check.name] = problem or "ok"
            if problem:
                (unavailable if getattr(check, "critical", True) else degraded).append(check.name)
        status = "not_ready" if unavailable else "degraded" if degraded else "ready"
        body = {"status": status, "checks": results, "degraded": degraded}
        body["unavailable"] = unavailable
        return body, 503 if unavailable else 200
