"""/api/runners: the Test Runners devicelab has heard from, and draining one."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields, validate

from adapters.http.json_bodies import iso, json_response
from adapters.http.security import current_actor, requires
from application.use_cases.runners import (
    DrainRunner,
    GetRunner,
    ListRunners,
    RunnerView,
    UndrainRunner,
)
from domain.runners import MAX_DRAIN_REASON, RunnerState
from domain.test_runs import TestRun
from domain.users import Permission

blp = Blueprint(
    "runners",
    __name__,
    url_prefix="/api/runners",
    description="Test Runners: registered by their reports; an admin may drain one",
)


class RecentRunSchema(Schema):
    id = fields.String()
    status = fields.String()
    verdict = fields.String(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    failure_reason = fields.String()


class RunnerSchema(Schema):
    id = fields.String()
    host = fields.String(metadata={"description": "as the runner reported it; '' if it did not"})
    version = fields.String()
    executors = fields.List(fields.String())
    state = fields.String(
        metadata={
            "enum": [s.value for s in RunnerState],
            "description": "online: heard from within DEVICELAB_RUNNER_SILENT_AFTER_S; "
            "silent: not (runners report only while they have a run, so an idle one is too)",
        }
    )
    busy = fields.Boolean(metadata={"description": "it claims a running run"})
    current_run_ids = fields.List(fields.String())
    first_seen_at = fields.DateTime()
    last_seen_at = fields.DateTime()
    runs_done = fields.Integer(metadata={"description": "runs it had claimed that ended"})
    failures = fields.Integer(
        metadata={"description": "of those, the ones that failed (reported failed, or expired)"}
    )
    drained = fields.Boolean(metadata={"description": "it gets no new run"})
    drained_by = fields.String()
    drained_at = fields.DateTime(allow_none=True)
    drain_reason = fields.String()


class RunnerDetailSchema(RunnerSchema):
    recent_runs = fields.List(
        fields.Nested(RecentRunSchema), metadata={"description": "the runs it claimed last"}
    )


class RunnerListSchema(Schema):
    items = fields.List(fields.Nested(RunnerSchema))


class DrainSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    reason = fields.String(load_default="", validate=validate.Length(max=MAX_DRAIN_REASON))


def _recent_run(run: TestRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status.value,
        "verdict": run.verdict.value if run.verdict else None,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "failure_reason": run.failure_reason,
    }


def runner_json(view: RunnerView, with_recent: bool = False) -> dict[str, Any]:
    runner = view.runner
    body = {
        "id": runner.id,
        "host": runner.host,
        "version": runner.version,
        "executors": list(runner.executors),
        "state": view.state.value,
        "busy": view.busy,
        "current_run_ids": list(view.current_run_ids),
        "first_seen_at": iso(runner.first_seen_at),
        "last_seen_at": iso(runner.last_seen_at),
        "runs_done": runner.runs_done,
        "failures": runner.failures,
        "drained": runner.drained,
        "drained_by": runner.drained_by,
        "drained_at": iso(runner.drained_at),
        "drain_reason": runner.drain_reason,
    }
    if with_recent:
        body["recent_runs"] = [_recent_run(run) for run in view.recent_runs]
    return body


@blp.route("")
class Runners(MethodView):
    @requires(Permission.READ)
    @blp.response(200, RunnerListSchema)
    @inject
    def get(self, list_runners: ListRunners = Provide["list_runners"]):
        """Every runner heard from, by id: online or silent, busy, drained, its counts"""
        return json_response({"items": [runner_json(view) for view in list_runners()]})


@blp.route("/<runner_id>")
class RunnerById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, RunnerDetailSchema)
    @blp.alt_response(404, description="no runner of that id has reported")
    @inject
    def get(self, runner_id, get_runner: GetRunner = Provide["get_runner"]):
        """One runner, with the runs it claimed last"""
        return json_response(runner_json(get_runner(runner_id), with_recent=True))


@blp.route("/<runner_id>/drain")
class RunnerDrain(MethodView):
    @requires(Permission.MANAGE_RUNNERS)
    @blp.arguments(DrainSchema)
    @blp.response(200, RunnerSchema)
    @blp.alt_response(403, description="only admins (permission runners:manage)")
    @blp.alt_response(404, description="no runner of that id has reported")
    @inject
    def post(self, data, runner_id, drain: DrainRunner = Provide["drain_runner"]):
        """Drain a runner: it gets no new run (its next claim is refused), the one it has
        finishes; the runners are told on the control exchange. A repeat changes nothing"""
        return json_response(runner_json(drain(runner_id, current_actor(), data["reason"])))

    @requires(Permission.MANAGE_RUNNERS)
    @blp.response(200, RunnerSchema)
    @blp.alt_response(403, description="only admins (permission runners:manage)")
    @blp.alt_response(404, description="no runner of that id has reported")
    @inject
    def delete(self, runner_id, undrain: UndrainRunner = Provide["undrain_runner"]):
        """Undrain a runner: it takes jobs again"""
        return json_response(runner_json(undrain(runner_id)))
