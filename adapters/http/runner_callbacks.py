"""/api/runner/test-runs/{id}/…: where a Test Runner reports start, progress and results."""

from __future__ import annotations

import math

from dependency_injector.wiring import Provide, inject
from flask import Response, current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from adapters.http.errors import error_body
from adapters.http.json_bodies import json_response
from adapters.http.json_fields import JsonNumber
from adapters.http.security import public
from adapters.http.test_runs import TestRunSchema, run_json
from application.errors import InvalidRunCredential, WrongRunCredential
from application.ports import Clock, RunCredentials
from application.use_cases.test_runs import (
    ProgressReport,
    RecordRunFailure,
    RecordRunProgress,
    RecordRunReleased,
    RecordRunResult,
    RecordRunStarted,
    RunReportOutcome,
)
from domain.errors import RunClaimed, RunnerDrained
from domain.runners import (
    MAX_EXECUTOR_NAME,
    MAX_EXECUTORS,
    MAX_HOST,
    MAX_RUNNER_ID,
    MAX_VERSION,
    RunnerInfo,
)
from domain.test_runs import Observation, ResultReport

blp = Blueprint(
    "runner_callbacks",
    __name__,
    url_prefix="/api/runner/test-runs",
    description=(
        "Callbacks for Test Runners (see docs/runner-contract.md). Not for users: each call "
        "carries the per-run credential of the job message as `Authorization: Bearer <token>`."
    ),
)

RUN_CREDENTIAL = [{"runCredential": []}]


@inject
def _check_run_credential(
    run_id: str,
    credentials: RunCredentials = Provide["run_credentials"],
    clock: Clock = Provide["clock"],
) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidRunCredential("a runner callback needs the run's credential as a Bearer token")
    if credentials.verify(token.strip(), clock.now()) != run_id:
        raise WrongRunCredential("this credential was issued for another run")


@blp.before_request
def run_credential_required() -> None:
    """Runner callbacks authenticate with the per-run credential, never a user session; the
    credential is checked before the body is even read."""
    _check_run_credential((request.view_args or {}).get("run_id", ""))


@blp.errorhandler(RunClaimed)
def run_claimed(error: RunClaimed):
    """409 `run_claimed`, plus when the claim lapses (`retry_after`, whole seconds, also as
    Retry-After) if its holder stays silent: a runner asks again then instead of dropping
    the job. Without a lapse time the asking runner has lost the run and must stop."""
    body = error_body(error.code, error.message)
    if isinstance(error, RunnerDrained):
        body["reason"] = error.reason  # stop taking jobs (contract section 9)
    headers = {}
    if error.retry_after_s is not None:
        retry_after = max(1, math.ceil(error.retry_after_s))
        body["retry_after"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return jsonify(body), 409, headers


class _Report(Schema):
    class Meta:
        # runners may send fields a later contract version adds; they are ignored here
        unknown = EXCLUDE


DEFAULT_MAX_SAMPLES = 1000


class ObservationSchema(_Report):
    metric = fields.String(required=True, validate=validate.Length(min=1, max=200))
    value = JsonNumber(
        load_default=None,
        allow_none=True,
        metadata={"description": "the final value; without it, the last sample's"},
    )
    unit = fields.String(load_default="", validate=validate.Length(max=50))
    samples = fields.List(
        fields.Tuple((JsonNumber(), JsonNumber())),
        load_default=list,
        metadata={
            "description": "the measured series: [t, value] pairs, t in seconds from the "
            "case's start, in time order; at most DEVICELAB_MAX_SAMPLES_PER_METRIC (1000)"
        },
    )

    @validates_schema
    def _bounded(self, data, **kwargs):
        """The limit is a setting, so it is checked here and not in the field."""
        limit = current_app.config.get("DEVICELAB_MAX_SAMPLES_PER_METRIC", DEFAULT_MAX_SAMPLES)
        if len(data.get("samples") or ()) > limit:
            raise ValidationError(
                f"at most {limit} samples per metric (DEVICELAB_MAX_SAMPLES_PER_METRIC)",
                "samples",
            )
        if data.get("value") is None and not data.get("samples"):
            raise ValidationError("a value or samples are required", "value")


class ResultReportSchema(_Report):
    test_case_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    device_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    measurements = fields.List(
        fields.Nested(ObservationSchema), load_default=list, validate=validate.Length(max=500)
    )
    message = fields.String(load_default="", validate=validate.Length(max=5000))
    error = fields.Boolean(
        load_default=False,
        metadata={"description": "true when the runner could not measure this pair"},
    )
    started_at = fields.AwareDateTime(load_default=None, allow_none=True)
    finished_at = fields.AwareDateTime(load_default=None, allow_none=True)


class _RunnerSaysSchema(_Report):
    """What a runner may say about itself in `started` and `progress` (optional: runners
    from before the registry send none of it). The registry keeps the latest it said."""

    host = fields.String(load_default="", validate=validate.Length(max=MAX_HOST))
    version = fields.String(load_default="", validate=validate.Length(max=MAX_VERSION))
    executors = fields.List(
        fields.String(validate=validate.Length(min=1, max=MAX_EXECUTOR_NAME)),
        load_default=list,
        validate=validate.Length(max=MAX_EXECUTORS),
        metadata={"description": "the executors it has (simulate, command, influxdb, ...)"},
    )


def _runner_info(data: dict) -> RunnerInfo:
    return RunnerInfo(data["host"], data["version"], tuple(data["executors"]))


class StartedSchema(_RunnerSaysSchema):
    runner = fields.String(load_default="", validate=validate.Length(max=MAX_RUNNER_ID))


class ReleasedSchema(_Report):
    runner = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ProgressSchema(_RunnerSaysSchema):
    runner = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_RUNNER_ID),
        metadata={"description": "the reporting runner's id: renews its claim on the run"},
    )
    progress = JsonNumber(
        required=True,
        validate=validate.Range(min=0, max=1),
        metadata={"description": "fraction done, 0–1"},
    )
    message = fields.String(load_default="", validate=validate.Length(max=1000))
    results = fields.List(
        fields.Nested(ResultReportSchema), load_default=list, validate=validate.Length(max=2000)
    )


class ResultSchema(_Report):
    results = fields.List(
        fields.Nested(ResultReportSchema), required=True, validate=validate.Length(max=2000)
    )


class FailedSchema(_Report):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ReportOutcomeSchema(Schema):
    changed = fields.Boolean(metadata={"description": "false when this repeated a report"})
    released_device_ids = fields.List(fields.String())
    run = fields.Nested(TestRunSchema)


def _reports(raw: list[dict]) -> list[ResultReport]:
    return [
        ResultReport(
            test_case_id=r["test_case_id"],
            device_id=r["device_id"],
            observations=tuple(Observation(**m) for m in r["measurements"]),
            message=r["message"],
            error=r["error"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
        )
        for r in raw
    ]


def _outcome(outcome: RunReportOutcome) -> Response:
    """What ReportOutcomeSchema dumps, built directly (see adapters/http/json_bodies.py)."""
    return json_response(
        {
            "changed": outcome.changed,
            "released_device_ids": list(outcome.released_device_ids),
            "run": run_json(outcome.run),
        }
    )


@blp.route("/<run_id>/started")
@public
class RunStarted(MethodView):
    @blp.arguments(StartedSchema)
    @blp.response(200, ReportOutcomeSchema)
    @blp.alt_response(
        409,
        description="finished or cancelled (`run_finished`), or another runner holds a live "
        "claim (`run_claimed`, with `retry_after` and Retry-After: when the claim lapses), or "
        "this runner is drained (`run_claimed` with `reason: runner_drained`, no retry_after)",
    )
    @blp.doc(security=RUN_CREDENTIAL)
    @inject
    def post(self, data, run_id, record: RecordRunStarted = Provide["record_run_started"]):
        """The runner picked up the job"""
        return _outcome(record(run_id, data["runner"], _runner_info(data)))


@blp.route("/<run_id>/progress")
@public
class RunProgress(MethodView):
    @blp.arguments(ProgressSchema)
    @blp.response(200, ReportOutcomeSchema)
    @blp.alt_response(
        409,
        description="the run has already finished or was cancelled (`run_finished`), or "
        "another runner took it over (`run_claimed`): stop executing it",
    )
    @blp.doc(security=RUN_CREDENTIAL)
    @inject
    def post(self, data, run_id, record: RecordRunProgress = Provide["record_run_progress"]):
        """Heartbeat with progress and partial results; extends the lease, renews the claim"""
        report = ProgressReport(
            data["progress"],
            data["message"],
            _reports(data["results"]),
            data["runner"],
            _runner_info(data),
        )
        return _outcome(record(run_id, report))


@blp.route("/<run_id>/result")
@public
class RunResult(MethodView):
    @blp.arguments(ResultSchema)
    @blp.response(200, ReportOutcomeSchema)
    @blp.alt_response(409, description="finished already, or conflicts with accepted results")
    @blp.doc(security=RUN_CREDENTIAL)
    @inject
    def post(self, data, run_id, record: RecordRunResult = Provide["record_run_result"]):
        """Final results: completes the run, computes the verdict, frees the devices"""
        return _outcome(record(run_id, _reports(data["results"])))


@blp.route("/<run_id>/failed")
@public
class RunFailed(MethodView):
    @blp.arguments(FailedSchema)
    @blp.response(200, ReportOutcomeSchema)
    @blp.alt_response(409, description="the run has already finished or was cancelled")
    @blp.doc(security=RUN_CREDENTIAL)
    @inject
    def post(self, data, run_id, record: RecordRunFailure = Provide["record_run_failure"]):
        """The runner could not execute the run; it fails and frees its devices"""
        return _outcome(record(run_id, data["reason"]))


@blp.route("/<run_id>/released")
@public
class RunReleased(MethodView):
    @blp.arguments(ReleasedSchema)
    @blp.response(200, ReportOutcomeSchema)
    @blp.alt_response(409, description="the run has already finished or was cancelled")
    @blp.doc(security=RUN_CREDENTIAL)
    @inject
    def post(self, data, run_id, record: RecordRunReleased = Provide["record_run_released"]):
        """A stopping runner gives the run back before requeueing its job"""
        return _outcome(record(run_id, data["runner"]))
