"""/api/plans and /api/plan-runs: test plans, starting them, and what their starts made.

Defining, editing and deleting a plan needs permission to start runs, as starting one does:
a plan with a trigger starts runs by itself."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from adapters.http.json_bodies import iso
from adapters.http.pagination import PageQuerySchema, page_schema
from adapters.http.security import current_actor, requires
from adapters.http.test_runs import PRIORITIES, VERDICTS, DeviceRequestSchema, request_json
from application.use_cases.plans import (
    CreatePlan,
    DeletePlan,
    GetPlan,
    GetPlanRun,
    ListPlanRuns,
    ListPlans,
    PlanInput,
    PlanRunView,
    StartPlan,
    UpdatePlan,
)
from domain.errors import InvalidValue
from domain.plans import (
    MAX_ENVIRONMENTS,
    MAX_MODELS,
    MAX_TEST_CASES,
    MAX_TRIGGERS,
    CauseKind,
    PlanSnapshot,
    TestPlan,
    Trigger,
    TriggerKind,
)
from domain.scheduling import MAX_REQUESTS, DeviceRequest, Priority
from domain.users import Permission

blp = Blueprint("plans", __name__, url_prefix="/api/plans", description="Test plans")
runs_blp = Blueprint(
    "plan_runs", __name__, url_prefix="/api/plan-runs", description="Runs of test plans"
)

LAST_RUNS = 5  # plan runs shown with each plan of the list


def _ids(most: int, **kwargs: Any) -> fields.List:
    return fields.List(
        fields.String(validate=validate.Length(min=1, max=100)),
        validate=validate.Length(max=most),
        **kwargs,
    )


class TriggerSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in TriggerKind]))
    cron = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "cron only: minute hour day-of-month month day-of-week"},
    )
    timezone = fields.String(
        load_default="UTC",
        validate=validate.Length(min=1, max=100),
        metadata={"description": "cron only: IANA zone the slots are wall-clock times in"},
    )


class _PlanFields(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    test_case_ids = _ids(MAX_TEST_CASES, metadata={"description": "in the order they run"})
    environment_ids = _ids(MAX_ENVIRONMENTS, metadata={"description": "one run per environment"})
    environment_id = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "one environment: the same as environment_ids [id]"},
    )
    device_ids = _ids(200)
    device_requests = fields.List(
        fields.Nested(DeviceRequestSchema), validate=validate.Length(max=MAX_REQUESTS)
    )
    models = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        validate=validate.Length(max=MAX_MODELS),
        metadata={"description": "matrix: one run per environment and model"},
    )
    parameters = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        values=fields.Raw(),
        validate=validate.Length(max=100),
    )
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    triggers = fields.List(fields.Nested(TriggerSchema), validate=validate.Length(max=MAX_TRIGGERS))

    @validates_schema
    def one_way_to_name_environments(self, data: dict, **_: Any) -> None:
        if "environment_id" in data and "environment_ids" in data:
            raise ValidationError(
                "give environment_id or environment_ids, not both", "environment_id"
            )


class PlanWriteSchema(_PlanFields):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    test_case_ids = _ids(MAX_TEST_CASES, required=True)


class PlanPatchSchema(_PlanFields):
    pass


class PlanQuerySchema(PageQuerySchema):
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "text in name"})


class PlanRunQuerySchema(PageQuerySchema):
    plan_id = fields.String(validate=validate.Length(max=100))


def _domain_values(data: dict[str, Any]) -> dict[str, Any]:
    """The request's fields as the domain takes them."""
    values = dict(data)
    if "environment_id" in values:
        values["environment_ids"] = [values.pop("environment_id")]
    if "device_requests" in values:
        values["device_requests"] = [DeviceRequest(**r) for r in values["device_requests"]]
    if "triggers" in values:
        values["triggers"] = [Trigger(**tr) for tr in values["triggers"]]
    if "priority" in values:
        values["priority"] = Priority(values["priority"])
    return values


class TriggerOutSchema(Schema):
    kind = fields.String()
    cron = fields.String(allow_none=True)
    timezone = fields.String()


class PlanDefinitionSchema(Schema):
    name = fields.String()
    version = fields.Integer()
    test_case_ids = fields.List(fields.String())
    environment_ids = fields.List(fields.String())
    device_ids = fields.List(fields.String())
    device_requests = fields.List(fields.Nested(DeviceRequestSchema))
    models = fields.List(fields.String())
    parameters = fields.Dict(keys=fields.String(), values=fields.Raw())
    priority = fields.String(metadata={"enum": PRIORITIES})
    triggers = fields.List(fields.Nested(TriggerOutSchema))


class PlanRunSummarySchema(Schema):
    id = fields.String()
    created_at = fields.String()
    finished_at = fields.String(allow_none=True)
    verdict = fields.String(allow_none=True, metadata={"enum": [*VERDICTS, None]})
    cause = fields.String(metadata={"enum": [c.value for c in CauseKind]})


class PlanSchema(PlanDefinitionSchema):
    id = fields.String()
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    last_runs = fields.List(
        fields.Nested(PlanRunSummarySchema),
        metadata={"description": f"the newest {LAST_RUNS} plan runs (list only)"},
    )


class CauseSchema(Schema):
    kind = fields.String(metadata={"enum": [c.value for c in CauseKind]})
    by = fields.String(metadata={"description": "who started it (manual), or cron / new firmware"})
    slot = fields.String(allow_none=True, metadata={"description": "cron: the slot it ran for"})
    device_id = fields.String(metadata={"description": "new firmware: on which device"})
    firmware_version = fields.String()


class PlanRunRunSchema(Schema):
    run_id = fields.String()
    environment_id = fields.String()
    environment_name = fields.String()
    model = fields.String(allow_none=True)
    status = fields.String(allow_none=True, metadata={"description": "null: the run is gone"})
    verdict = fields.String(allow_none=True)
    progress = fields.Float(allow_none=True)


class PlanProgressSchema(Schema):
    total = fields.Integer()
    finished = fields.Integer()
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    fraction = fields.Float(metadata={"description": "0..1"})


class PlanRunSchema(Schema):
    id = fields.String()
    plan_id = fields.String()
    plan = fields.Nested(PlanDefinitionSchema, metadata={"description": "as it was"})
    cause = fields.Nested(CauseSchema)
    runs = fields.List(fields.Nested(PlanRunRunSchema))
    skipped = fields.List(fields.String(), metadata={"description": "matrix cells without devices"})
    progress = fields.Nested(PlanProgressSchema)
    verdict = fields.String(
        allow_none=True,
        metadata={"enum": [*VERDICTS, None], "description": "null until every run finished"},
    )
    created_at = fields.String()
    finished_at = fields.String(allow_none=True)


PlanPageSchema = page_schema(PlanSchema, "PlanPageSchema")
PlanRunPageSchema = page_schema(PlanRunSchema, "PlanRunPageSchema")


def _definition_json(plan: TestPlan | PlanSnapshot) -> dict[str, Any]:
    return {
        "name": plan.name,
        "version": plan.version,
        "test_case_ids": list(plan.test_case_ids),
        "environment_ids": list(plan.environment_ids),
        "device_ids": list(plan.device_ids),
        "device_requests": [request_json(r) for r in plan.device_requests],
        "models": list(plan.models),
        "parameters": dict(plan.parameters),
        "priority": plan.priority.value,
        "triggers": [
            {"kind": tr.kind.value, "cron": tr.cron, "timezone": tr.timezone}
            for tr in plan.triggers
        ],
    }


def plan_json(plan: TestPlan, last_runs: list[PlanRunView] | None = None) -> dict[str, Any]:
    body = {
        "id": plan.id,
        **_definition_json(plan),
        "created_at": iso(plan.created_at),
        "updated_at": iso(plan.updated_at),
    }
    if last_runs is not None:
        body["last_runs"] = [
            {
                "id": v.plan_run.id,
                "created_at": iso(v.plan_run.created_at),
                "finished_at": iso(v.plan_run.finished_at),
                "verdict": v.progress.verdict.value if v.progress.verdict else None,
                "cause": v.plan_run.cause.kind.value,
            }
            for v in last_runs
        ]
    return body


def plan_run_json(view: PlanRunView) -> dict[str, Any]:
    plan_run, cause = view.plan_run, view.plan_run.cause
    states = {s.run_id: s for s in view.states}
    runs = []
    for entry in plan_run.runs:
        state = states.get(entry.run_id)
        runs.append(
            {
                "run_id": entry.run_id,
                "environment_id": entry.environment_id,
                "environment_name": entry.environment_name,
                "model": entry.model,
                "status": state.status.value if state else None,
                "verdict": state.verdict.value if state and state.verdict else None,
                "progress": state.progress if state else None,
            }
        )
    # the verdict as the runs say now: a plan run is settled by the worker a moment later
    verdict = plan_run.verdict or view.progress.verdict
    return {
        "id": plan_run.id,
        "plan_id": plan_run.plan_id,
        "plan": _definition_json(plan_run.plan),
        "cause": {
            "kind": cause.kind.value,
            "by": cause.by,
            "slot": iso(cause.slot),
            "device_id": cause.device_id,
            "firmware_version": cause.firmware_version,
        },
        "runs": runs,
        "skipped": list(plan_run.skipped),
        "progress": {
            "total": view.progress.total,
            "finished": view.progress.finished,
            "by_status": view.progress.by_status,
            "fraction": view.progress.fraction,
        },
        "verdict": verdict.value if verdict else None,
        "created_at": iso(plan_run.created_at),
        "finished_at": iso(plan_run.finished_at),
    }


@blp.route("")
class Plans(MethodView):
    @requires(Permission.READ)
    @blp.arguments(PlanQuerySchema, location="query")
    @blp.response(200, PlanPageSchema)
    @inject
    def get(
        self,
        args,
        list_plans: ListPlans = Provide["list_plans"],
        list_runs: ListPlanRuns = Provide["list_plan_runs"],
    ):
        """List test plans, each with its newest plan runs"""
        page = list_plans(args.get("q") or None, args["limit"], args["cursor"])
        items = [plan_json(p, list_runs(p.id, LAST_RUNS).items) for p in page.items]
        return {"items": items, "next_cursor": page.next_cursor}

    @requires(Permission.RUN_TESTS)
    @blp.arguments(PlanWriteSchema)
    @blp.response(201, PlanSchema)
    @blp.alt_response(422, description="bad cron or time zone, unknown test case, empty selection")
    @inject
    def post(self, data, create: CreatePlan = Provide["create_plan"]):
        """Define a test plan (with triggers, it starts by itself)"""
        values = _domain_values(data)
        if "environment_ids" not in values:
            raise InvalidValue("environment_ids", "give environment_id or environment_ids")
        return plan_json(create(PlanInput(**values)))


@blp.route("/<plan_id>")
class PlanById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, PlanSchema)
    @inject
    def get(self, plan_id, get_plan: GetPlan = Provide["get_plan"]):
        """Get one test plan (its current version)"""
        return plan_json(get_plan(plan_id))

    @requires(Permission.RUN_TESTS)
    @blp.arguments(PlanPatchSchema)
    @blp.response(200, PlanSchema)
    @inject
    def patch(self, changes, plan_id, update: UpdatePlan = Provide["update_plan"]):
        """Edit a test plan; a real change bumps its version. Plan runs keep theirs."""
        return plan_json(update(plan_id, _domain_values(changes)))

    @requires(Permission.RUN_TESTS)
    @blp.response(204)
    @inject
    def delete(self, plan_id, delete: DeletePlan = Provide["delete_plan"]):
        """Delete a test plan; its plan runs stay readable"""
        delete(plan_id)


@blp.route("/<plan_id>/start")
class PlanStart(MethodView):
    @requires(Permission.RUN_TESTS)
    @blp.response(201, PlanRunSchema)
    @inject
    def post(
        self,
        plan_id,
        start: StartPlan = Provide["start_plan"],
        get_run: GetPlanRun = Provide["get_plan_run"],
    ):
        """Start a test plan: its runs go into the queue, grouped in one plan run"""
        return plan_run_json(get_run(start(plan_id, current_actor()).id))


@runs_blp.route("")
class PlanRuns(MethodView):
    @requires(Permission.READ)
    @runs_blp.arguments(PlanRunQuerySchema, location="query")
    @runs_blp.response(200, PlanRunPageSchema)
    @inject
    def get(self, args, list_runs: ListPlanRuns = Provide["list_plan_runs"]):
        """Plan runs, newest first (of one plan with plan_id)"""
        page = list_runs(args.get("plan_id") or None, args["limit"], args["cursor"])
        return {"items": [plan_run_json(v) for v in page.items], "next_cursor": page.next_cursor}


@runs_blp.route("/<plan_run_id>")
class PlanRunById(MethodView):
    @requires(Permission.READ)
    @runs_blp.response(200, PlanRunSchema)
    @inject
    def get(self, plan_run_id, get_run: GetPlanRun = Provide["get_plan_run"]):
        """One plan run: its runs, progress, verdict and what started it"""
        return plan_run_json(get_run(plan_run_id))
