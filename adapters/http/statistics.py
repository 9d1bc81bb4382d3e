"""/api/stats: the numbers on the dashboard."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from adapters.http.security import requires
from application.use_cases.statistics import GetLabStatistics
from domain.users import Permission

blp = Blueprint("statistics", __name__, url_prefix="/api/stats", description="Dashboard numbers")


class DayVerdictsSchema(Schema):
    day = fields.String(metadata={"description": "YYYY-MM-DD (UTC)"})
    passed = fields.Integer(
        data_key="pass", metadata={"description": "passed runs, marginal ones included"}
    )
    marginal = fields.Integer(metadata={"description": "of the passed, those only marginal"})
    fail = fields.Integer()
    inconclusive = fields.Integer()


class FailingCaseSchema(Schema):
    test_case_id = fields.String()
    name = fields.String()
    failures = fields.Integer(metadata={"description": "runs in which the case failed"})
    runs = fields.Integer(metadata={"description": "finished runs that included the case"})


class QueueStatisticsSchema(Schema):
    length = fields.Integer(metadata={"description": "items waiting for their devices"})
    longest_wait_s = fields.Float(
        allow_none=True, metadata={"description": "how long the oldest one has waited; null: none"}
    )
    oldest_waiting_since = fields.DateTime(
        allow_none=True, metadata={"description": "when the oldest waiting item was submitted"}
    )


class LabStatisticsSchema(Schema):
    devices_by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    runs_by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    pass_rate_by_day = fields.List(
        fields.Nested(DayVerdictsSchema),
        metadata={"description": "completed runs per day and verdict, last 30 days"},
    )
    most_failing_test_cases = fields.List(fields.Nested(FailingCaseSchema))
    queue = fields.Nested(QueueStatisticsSchema)


@blp.route("")
class LabStatistics(MethodView):
    @requires(Permission.READ)
    @blp.response(200, LabStatisticsSchema)
    @inject
    def get(self, statistics: GetLabStatistics = Provide["get_lab_statistics"]):
        """Device and run counts, verdicts per day, the test cases that fail most"""
        stats = statistics()
        counts = {(day, verdict): n for day, verdict, n in stats.verdicts_by_day}
        return {
            "devices_by_status": stats.devices_by_status,
            "runs_by_status": stats.runs_by_status,
            "pass_rate_by_day": [
                {
                    "day": day,
                    "passed": counts.get((day, "pass"), 0) + counts.get((day, "marginal"), 0),
                    "marginal": counts.get((day, "marginal"), 0),
                    "fail": counts.get((day, "fail"), 0),
                    "inconclusive": counts.get((day, "inconclusive"), 0),
                }
                for day in stats.days
            ],
            "most_failing_test_cases": [
                {"test_case_id": i, "name": name, "failures": failures, "runs": runs}
                for i, name, failures, runs in stats.most_failing_test_cases
            ],
            "queue": {
                "length": stats.waiting,
                "longest_wait_s": stats.longest_wait_s,
                "oldest_waiting_since": stats.oldest_waiting_since,
            },
        }
