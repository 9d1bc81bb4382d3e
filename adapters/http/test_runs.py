"""/api/test-runs: start runs, follow them, read their results, cancel them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dependency_injector.wiring import Provide, inject
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from adapters.http.json_bodies import iso, json_response
from adapters.http.list_etags import LIST_ETAG_DOC, list_etag, not_modified, with_etag
from adapters.http.pagination import PageQuerySchema, page_schema
from adapters.http.security import current_actor, requires
from adapters.http.test_cases import CriterionOutSchema, ExecutionOutSchema, criterion_out
from application.ports import RunFilter
from application.use_cases.admission import WHEN_BUSY
from application.use_cases.lab_version import ReadLabVersion
from application.use_cases.scheduling import GetQueue, QueueEntry
from application.use_cases.test_runs import (
    CancelTestRun,
    GetTestRun,
    ListTestRuns,
    StartTestRun,
    StartTestRunRequest,
)
from domain.scheduling import MAX_COUNT, MAX_REQUESTS, DeviceRequest, Priority, WaitingFor
from domain.test_cases import Outcome, TestCaseSnapshot
from domain.test_runs import CaseResult, Measurement, RunPurpose, RunStatus, TestRun, Verdict
from domain.users import Permission

blp = Blueprint("test_runs", __name__, url_prefix="/api/test-runs", description="Test runs")

STATUSES = [s.value for s in RunStatus]
VERDICTS = [v.value for v in Verdict]
PURPOSES = [p.value for p in RunPurpose]
PRIORITIES = [p.value for p in Priority]
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
    execution = fields.Nested(ExecutionOutSchema)


class DeviceSnapshotSchema(Schema):
    id = fields.String()
    name = fields.String()
    model = fields.String()
    serial = fields.String()
    firmware_version = fields.String()
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    role = fields.String(
        allow_none=True,
        metadata={"description": "the role of the request it fills; null for a named device"},
    )


class DeviceRequestSchema(Schema):
    role = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "what the device is for in the run, e.g. meter"},
    )
    model = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "only devices of this model (empty: any)"},
    )
    labels = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        values=fields.String(validate=validate.Length(max=200)),
        load_default=dict,
        validate=validate.Length(max=20),
        metadata={"description": "only devices with every one of these labels"},
    )
    count = fields.Integer(
        load_default=1, strict=True, validate=validate.Range(min=1, max=MAX_COUNT)
    )


class PartWaitSchema(Schema):
    request = fields.Integer(metadata={"description": "1-based index into device_requests"})
    description = fields.String()
    missing = fields.Integer(metadata={"description": "places of the request still unfilled"})
    free_for_it = fields.Integer()
    kept_for_earlier = fields.Integer(
        metadata={"description": "matching free devices kept for runs ahead in the queue"}
    )


class WaitingForSchema(Schema):
    devices = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "named devices not free for it, with why (busy, offline, ...)"},
    )
    requests = fields.List(fields.Nested(PartWaitSchema))


class EnvironmentSnapshotSchema(Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String()
    variables = fields.Dict(keys=fields.String(), values=fields.String())


OUTCOMES = [o.value for o in Outcome]


class MeasurementSchema(Schema):
    metric = fields.String()
    condition = fields.String()
    threshold = fields.Float(allow_none=True, metadata={"description": "null for ranges"})
    unit = fields.String()
    value = fields.Float(allow_none=True, metadata={"description": "the value judged"})
    passed = fields.Boolean(
        allow_none=True, metadata={"description": "true for pass and marginal; null: no outcome"}
    )
    outcome = fields.Function(lambda m: m.outcome.value, metadata={"enum": OUTCOMES})
    reason = fields.String(metadata={"description": "why the outcome is inconclusive"})
    of = fields.String(metadata={"description": "what of the samples was judged"})
    expected = fields.String(metadata={"description": "the criterion, in words"})
    samples = fields.List(
        fields.List(fields.Float()),
        metadata={
            "description": "[t, value] pairs, t in seconds from the case's start; only in "
            "GET /api/test-runs/{id} (lists and callback answers leave them out)"
        },
    )


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
        lambda r: r.verdict.value if r.verdict else None,
        allow_none=True,
        metadata={"enum": [*VERDICTS, None], "description": "null until the run has finished"},
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
    priority = fields.Function(lambda r: r.priority.value, metadata={"enum": PRIORITIES})
    purpose = fields.Function(
        lambda r: r.purpose.value,
        metadata={
            "enum": PURPOSES,
            "description": "health_check: started by the worker to judge its device (it goes "
            "ahead of normal work there and stays out of statistics and comparisons)",
        },
    )
    requested_device_ids = fields.Function(
        lambda r: list(r.requested_device_ids),
        metadata={"description": "the devices the run named (devices: those it got)"},
    )
    device_requests = fields.Function(
        lambda r: [request_json(q) for q in r.device_requests],
        metadata={"description": "the devices the run asked for by kind"},
    )
    queue_timeout_at = fields.DateTime(
        allow_none=True, metadata={"description": "a run still waiting then is aborted"}
    )
    position = fields.Function(
        lambda r: None,
        allow_none=True,
        metadata={"description": "1-based place in the queue while waiting; else null"},
    )
    waiting_for = fields.Function(
        lambda r: None,
        allow_none=True,
        metadata={"description": "while waiting: what it waits for (WaitingFor); else null"},
    )
    estimated_start_at = fields.Function(
        lambda r: iso(r.estimated_start_at) if r.waiting else None,
        allow_none=True,
        metadata={
            "description": "while waiting: when it is expected to get its devices, as the "
            "worker last estimated it after a scheduling pass (docs/scheduling.md); null when "
            "it cannot be told, not estimated yet, or not waiting"
        },
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _case_json(case: TestCaseSnapshot) -> dict[str, Any]:
    return {
        "id": case.id,
        "version": int(case.version),
        "name": case.name,
        "description": case.description,
        "criteria": [criterion_out(c) for c in case.criteria],
        "duration_s": int(case.duration_s),
        "timeout_s": int(case.timeout_s),
        "parameters": {str(k): v for k, v in case.parameters.items()},
        "tags": [str(tag) for tag in case.tags],
        "execution": case.execution.as_json(),
    }


def _measurement_json(m: Measurement, with_samples: bool) -> dict[str, Any]:
    data = {
        "metric": m.metric,
        "condition": _text(m.condition),
        "threshold": _number(m.threshold),
        "unit": m.unit,
        "value": _number(m.value),
        "passed": None if m.passed is None else bool(m.passed),
        "outcome": m.outcome.value,
        "reason": m.reason,
        "of": m.of,
        "expected": m.expected,
    }
    if with_samples:
        data["samples"] = [[t, v] for t, v in m.samples]
    return data


def _result_json(result: CaseResult, with_samples: bool = False) -> dict[str, Any]:
    return {
        "test_case_id": result.test_case_id,
        "device_id": result.device_id,
        "verdict": result.verdict.value,
        "measurements": [_measurement_json(m, with_samples) for m in result.measurements],
        "message": result.message,
        "started_at": iso(result.started_at),
        "finished_at": iso(result.finished_at),
    }


def request_json(request: DeviceRequest) -> dict[str, Any]:
    return {
        "role": request.role,
        "model": request.model,
        "labels": dict(request.labels),
        "count": request.count,
    }


def waiting_for_json(waits: WaitingFor | None) -> dict[str, Any] | None:
    if waits is None:
        return None
    return {
        "devices": dict(waits.devices),
        "requests": [
            {
                "request": p.part + 1,
                "description": p.request.describe(),
                "missing": p.missing,
                "free_for_it": p.free_for_it,
                "kept_for_earlier": p.kept_for_earlier,
            }
            for p in waits.parts
        ],
    }


def run_json(
    run: TestRun, queued: QueueEntry | None = None, with_samples: bool = False
) -> dict[str, Any]:
    """What TestRunSchema dumps (see adapters/http/json_bodies.py); `queued` is the run's
    place in the queue while it waits. The measured series (`with_samples`) only for one
    run's page: up to DEVICELAB_MAX_SAMPLES_PER_METRIC pairs per measurement would make
    every list and callback answer that much larger."""
    environment = run.environment
    return {
        "id": run.id,
        "status": run.status.value,
        "verdict": run.verdict.value if run.verdict else None,
        "test_cases": [_case_json(case) for case in run.test_cases],
        "environment": {
            "id": environment.id,
            "name": environment.name,
            "description": environment.description,
            "variables": {str(k): _text(v) for k, v in environment.variables.items()},
        },
        "devices": [
            {
                "id": d.id,
                "name": d.name,
                "model": d.model,
                "serial": d.serial,
                "firmware_version": d.firmware_version,
                "labels": {str(k): _text(v) for k, v in d.labels.items()},
                "role": d.role,
            }
            for d in run.devices
        ],
        "parameters": {str(k): v for k, v in run.parameters.items()},
        "started_by": run.started_by,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "deadline": iso(run.deadline),
        "failure_reason": run.failure_reason,
        "progress": float(run.progress),
        "progress_message": run.progress_message,
        "last_report_at": iso(run.last_report_at),
        "runner": run.runner,
        "grafana_url": grafana_url(run),
        "results": [_result_json(r, with_samples) for r in run.results.values()],
        "priority": run.priority.value,
        "purpose": run.purpose.value,
        "requested_device_ids": list(run.requested_device_ids),
        "device_requests": [request_json(q) for q in run.device_requests],
        "queue_timeout_at": iso(run.queue_timeout_at),
        "position": queued.position if queued else None,
        "waiting_for": waiting_for_json(queued.waiting_for) if queued else None,
        "estimated_start_at": iso(run.estimated_start_at) if run.waiting else None,
    }


def _queue_places(runs: list[TestRun], get_queue: GetQueue) -> dict[str, QueueEntry]:
    """Positions only when some run of the answer waits: it costs a look at the queue."""
    if not any(run.waiting for run in runs):
        return {}
    return {entry.id: entry for entry in get_queue()}


class StartTestRunSchema(Schema):
    test_case_ids = _id_list
    environment_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
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
        metadata={"description": "devices by kind: count devices of a model and/or labels"},
    )
    when_busy = fields.String(
        load_default="queue",
        validate=validate.OneOf(WHEN_BUSY),
        metadata={
            "description": "queue (default): the run waits for busy devices (201, status "
            "waiting); reject: refused with 409 as before, nothing is kept"
        },
    )
    priority = fields.String(
        load_default=Priority.NORMAL.value,
        validate=validate.OneOf(PRIORITIES),
        metadata={"description": "queue order: priority, then first come first served"},
    )
    queue_timeout_s = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=30 * 24 * 3600),
        allow_nan=False,
        metadata={"description": "how long it may wait (default DEVICELAB_QUEUE_TIMEOUT_S)"},
    )
    parameters = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        values=fields.Raw(),
        load_default=dict,
        validate=validate.Length(max=100),
        metadata={
            "description": "override the test cases' default parameters: data handed to what "
            "the case executes, never how it is executed"
        },
    )


def within_utc_range(moment: datetime) -> None:
    """Runs are stored and compared in UTC: 9999-12-31T23:59:59-23:59 is a valid ISO 8601
    time, but past the last datetime Python (and so the database adapter) can hold."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValidationError("is out of range once converted to UTC") from None


class RunFilterSchema(Schema):
    """The run history's filters (the list, and its CSV export)."""

    status = fields.String(validate=validate.OneOf(STATUSES))
    verdict = fields.String(validate=validate.OneOf(VERDICTS))
    purpose = fields.String(
        validate=validate.OneOf(PURPOSES),
        metadata={"description": "normal runs only, or health checks only"},
    )
    device_id = fields.String(validate=validate.Length(max=100))
    environment_id = fields.String(validate=validate.Length(max=100))
    test_case_id = fields.String(validate=validate.Length(max=100))
    firmware = fields.String(validate=validate.Length(max=200))
    from_ = fields.AwareDateTime(
        data_key="from",
        default_timezone=UTC,
        validate=within_utc_range,
        metadata={"description": "created at or after (ISO 8601)"},
    )
    to = fields.AwareDateTime(
        default_timezone=UTC,
        validate=within_utc_range,
        metadata={"description": "created at or before (ISO 8601)"},
    )


class RunQuerySchema(PageQuerySchema, RunFilterSchema):
    pass


def run_filter(args: dict[str, Any]) -> RunFilter:
    return RunFilter(
        status=RunStatus(args["status"]) if args.get("status") else None,
        verdict=Verdict(args["verdict"]) if args.get("verdict") else None,
        purpose=RunPurpose(args["purpose"]) if args.get("purpose") else None,
        device_id=args.get("device_id"),
        environment_id=args.get("environment_id"),
        test_case_id=args.get("test_case_id"),
        firmware=args.get("firmware"),
        created_from=args.get("from_"),
        created_to=args.get("to"),
    )


class CancelSchema(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


TestRunPageSchema = page_schema(TestRunSchema, "TestRunPageSchema")


@blp.route("")
class TestRuns(MethodView):
    @requires(Permission.READ)
    @blp.arguments(RunQuerySchema, location="query")
    @blp.response(200, TestRunPageSchema)
    @blp.doc(**LIST_ETAG_DOC)
    @inject
    def get(
        self,
        args,
        list_runs: ListTestRuns = Provide["list_test_runs"],
        get_queue: GetQueue = Provide["get_queue"],
        lab_version: ReadLabVersion = Provide["read_lab_version"],
    ):
        """Run history, newest first, filtered"""
        etag = list_etag(lab_version(), args)
        if (unchanged := not_modified(etag)) is not None:
            return unchanged
        page = list_runs(run_filter(args), args["limit"], args["cursor"])
        places = _queue_places(page.items, get_queue)
        items = [run_json(run, places.get(run.id)) for run in page.items]
        return with_etag(json_response({"items": items, "next_cursor": page.next_cursor}), etag)

    @requires(Permission.RUN_TESTS)
    @blp.arguments(StartTestRunSchema)
    @blp.response(201, TestRunSchema)
    @blp.alt_response(409, description="when_busy=reject: devices are not available now (listed)")
    @blp.alt_response(422, description="unknown devices, or a request the lab cannot satisfy")
    @inject
    def post(
        self,
        data,
        start: StartTestRun = Provide["start_test_run"],
        get_queue: GetQueue = Provide["get_queue"],
    ):
        """Start a test run: books all its devices at once, or waits for them in the queue

        Priority high is open to everyone who may start runs (engineers and admins) and is
        recorded on the run."""
        requests = [DeviceRequest(**r) for r in data.pop("device_requests")]
        run = start(
            StartTestRunRequest(**data, device_requests=requests, started_by=current_actor())
        )
        return json_response(run_json(run, _queue_places([run], get_queue).get(run.id)), 201)


@blp.route("/<run_id>")
class TestRunById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, TestRunSchema)
    @inject
    def get(
        self,
        run_id,
        get_run: GetTestRun = Provide["get_test_run"],
        get_queue: GetQueue = Provide["get_queue"],
    ):
        """One run with its results (and its place in the queue while it waits)"""
        run = get_run(run_id)
        queued = _queue_places([run], get_queue).get(run.id)
        return json_response(run_json(run, queued, with_samples=True))


@blp.route("/<run_id>/cancel")
class TestRunCancel(MethodView):
    @requires(Permission.RUN_TESTS)
    @blp.arguments(CancelSchema)
    @blp.response(200, TestRunSchema)
    @inject
    def post(self, data, run_id, cancel: CancelTestRun = Provide["cancel_test_run"]):
        """Cancel a waiting, queued or running run: it is aborted and its devices are freed"""
        return json_response(run_json(cancel(run_id, current_actor(), data["reason"]).run))
