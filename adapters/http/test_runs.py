"""/api/test-runs: start runs, follow them, read their results, cancel them."""

from __future__ import annotations

from datetime import UTC

from dependency_injector.wiring import Provide, inject
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.pagination import PageQuerySchema, page_schema
from adapters.http.security import current_actor, requires
from adapters.http.test_cases import CriterionOutSchema
from application.ports import RunFilter
from application.use_cases.test_runs import (
    CancelTestRun,
    GetTestRun,
    ListTestRuns,
    StartTestRun,
    StartTestRunRequest,
)
from domain.test_runs import RunStatus, Verdict
from domain.users import Permission

blp = Blueprint("test_runs", __name__, url_prefix="/api/test-runs", description="Test runs")

STATUSES = [s.value for s in RunStatus]
VERDICTS = [v.value for v in Verdict]
_id_list = fields.List(
    fields.String(validate=validate.Length(min=1, max=100)),
    required=True,
    validate=validate.Length(min=1, max=200),
)


class TestCaseSnapshotSchema(Schema):
    __test__ = False

    id = fields.String()
    version = fields.Integer()
    name = fields.String()
    description = fields.String()
    criteria = fields.List(fields.Nested(CriterionOutSchema))
    duration_s = fields.Integer()
    timeout_s = fields.Integer()
    parameters = fields.Dict(keys=fields.String(), values=fields.Raw())
    tags = fields.List(fields.String())


class DeviceSnapshotSchema(Schema):
    id = fields.String()
    name = fields.String()
    model = fields.String()
    serial = fields.String()
    firmware_version = fields.String()
    labels = fields.Dict(keys=fields.String(), values=fields.String())


class EnvironmentSnapshotSchema(Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String()
    variables = fields.Dict(keys=fields.String(), values=fields.String())


class MeasurementSchema(Schema):
    metric = fields.String()
    condition = fields.String()
    threshold = fields.Float()
    unit = fields.String()
    value = fields.Float(allow_none=True)
    passed = fields.Boolean(allow_none=True)


class CaseResultSchema(Schema):
    test_case_id = fields.String()
    device_id = fields.String()
    verdict = fields.Function(lambda r: r.verdict.value, metadata={"enum": VERDICTS})
    measurements = fields.List(fields.Nested(MeasurementSchema))
    message = fields.String()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class _KeepUnknown(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def grafana_url(run) -> str | None:
    """The run's dashboard link from DEVICELAB_GRAFANA_URL_TEMPLATE, with {run_id},
    {start_ms} and {end_ms} filled in (unknown placeholders are left as they are)."""
    template = current_app.config.get("DEVICELAB_GRAFANA_URL_TEMPLATE") or ""
    if not template:
        return None
    start = run.started_at or run.created_at
    end = run.finished_at or max(run.deadline, start)
    values = _KeepUnknown(
        run_id=run.id,
        start_ms=int(start.timestamp() * 1000),
        end_ms=int(end.timestamp() * 1000),
    )
    try:
        return template.format_map(values)
    except (ValueError, IndexError):  # a malformed template must not break run pages
        return None


class TestRunSchema(Schema):
    __test__ = False

    id = fields.String()
    status = fields.Function(lambda r: r.status.value, metadata={"enum": STATUSES})
    verdict = fields.Function(
        lambda r: r.verdict.value if r.verdict else None, metadata={"enum": VERDICTS}
    )
    test_cases = fields.List(fields.Nested(TestCaseSnapshotSchema))
    environment = fields.Nested(EnvironmentSnapshotSchema)
    devices = fields.List(fields.Nested(DeviceSnapshotSchema))
    parameters = fields.Dict(keys=fields.String(), values=fields.Raw())
    started_by = fields.String()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    deadline = fields.DateTime()
    failure_reason = fields.String()
    progress = fields.Float()
    progress_message = fields.String()
    last_report_at = fields.DateTime(allow_none=True)
    runner = fields.String(metadata={"description": "the runner executing the run"})
    grafana_url = fields.Function(grafana_url, allow_none=True)
    results = fields.Function(
        lambda r: CaseResultSchema(many=True).dump(list(r.results.values())),
        metadata={"description": "one result per (test case, device) reported so far"},
    )


class StartTestRunSchema(Schema):
    test_case_ids = _id_list
    environment_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    device_ids = _id_list
    parameters = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        values=fields.Raw(),
        load_default=dict,
        validate=validate.Length(max=100),
        metadata={"description": "override the test cases' default parameters"},
    )


class RunQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    verdict = fields.String(validate=validate.OneOf(VERDICTS))
    device_id = fields.String(validate=validate.Length(max=100))
    environment_id = fields.String(validate=validate.Length(max=100))
    test_case_id = fields.String(validate=validate.Length(max=100))
    firmware = fields.String(validate=validate.Length(max=200))
    from_ = fields.AwareDateTime(
        data_key="from",
        default_timezone=UTC,
        metadata={"description": "created at or after (ISO 8601)"},
    )
    to = fields.AwareDateTime(
        default_timezone=UTC, metadata={"description": "created at or before (ISO 8601)"}
    )


class CancelSchema(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


TestRunPageSchema = page_schema(TestRunSchema, "TestRunPageSchema")


@blp.route("")
class TestRuns(MethodView):
    @requires(Permission.READ)
    @blp.arguments(RunQuerySchema, location="query")
    @blp.response(200, TestRunPageSchema)
    @inject
    def get(self, args, list_runs: ListTestRuns = Provide["list_test_runs"]):
        """Run history, newest first, filtered"""
        where = RunFilter(
            status=RunStatus(args["status"]) if args.get("status") else None,
            verdict=Verdict(args["verdict"]) if args.get("verdict") else None,
            device_id=args.get("device_id"),
            environment_id=args.get("environment_id"),
            test_case_id=args.get("test_case_id"),
            firmware=args.get("firmware"),
            created_from=args.get("from_"),
            created_to=args.get("to"),
        )
        page = list_runs(where, args["limit"], args["cursor"])
        return {"items": page.items, "next_cursor": page.next_cursor}

    @requires(Permission.RUN_TESTS)
    @blp.arguments(StartTestRunSchema)
    @blp.response(201, TestRunSchema)
    @blp.alt_response(409, description="one or more devices are not available (listed)")
    @inject
    def post(self, data, start: StartTestRun = Provide["start_test_run"]):
        """Start a test run: reserves all the devices or none, and queues the job"""
        return start(StartTestRunRequest(**data, started_by=current_actor()))


@blp.route("/<run_id>")
class TestRunById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, TestRunSchema)
    @inject
    def get(self, run_id, get_run: GetTestRun = Provide["get_test_run"]):
        """One run with its results"""
        return get_run(run_id)


@blp.route("/<run_id>/cancel")
class TestRunCancel(MethodView):
    @requires(Permission.RUN_TESTS)
    @blp.arguments(CancelSchema)
    @blp.response(200, TestRunSchema)
    @inject
    def post(self, data, run_id, cancel: CancelTestRun = Provide["cancel_test_run"]):
        """Cancel a queued or running run: it is aborted and its devices are freed at once"""
        return cancel(run_id, current_actor(), data["reason"]).run
