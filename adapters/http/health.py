"""/api/health (liveness) and /api/ready (can we reach what we depend on)."""

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

    def check(self) -> str | None:
        """None when healthy, else a short description of the problem."""
        ...


class HealthSchema(Schema):
    status = fields.String()


class ReadySchema(Schema):
    status = fields.String(metadata={"enum": ["ready", "not_ready"]})
    checks = fields.Dict(keys=fields.String(), values=fields.String())


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
    @blp.alt_response(503, schema=ReadySchema, description="a dependency is unreachable")
    @inject
    def get(self, checks: list[ReadinessCheck] = Provide["readiness_checks"]):
        """The database (and broker, when configured) answer"""
        results = {}
        for check in checks:
            try:
                problem = check.check()
            except Exception as error:  # a probe must report, never crash the endpoint
                problem = f"{type(error).__name__}: {error}"
            results[check.name] = problem or "ok"
        ready = all(v == "ok" for v in results.values())
        return {"status": "ready" if ready else "not_ready", "checks": results}, (
            200 if ready else 503
        )
