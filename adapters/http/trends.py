"""/api/test-cases/{id}/trend: a test case's measured values over time per device, its
criterion, the firmware changes, and its pass rate per day."""

from __future__ import annotations

from datetime import UTC

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.json_bodies import iso, json_response
from adapters.http.security import requires
from adapters.http.test_runs import within_utc_range
from application.use_cases.trends import DEFAULT_LIMIT, MAX_LIMIT, ShowTrend, TrendRequest
from domain.users import Permission

blp = Blueprint("trends", __name__, url_prefix="/api", description="Test case trends")

_text = {"validate": validate.Length(min=1, max=200)}


class TrendQuerySchema(Schema):
    metric = fields.String(
        **_text, metadata={"description": "default: the first criterion's metric"}
    )
    model = fields.String(**_text)
    device_id = fields.String(**_text)
    from_ = fields.AwareDateTime(
        data_key="from",
        default_timezone=UTC,
        validate=within_utc_range,
        metadata={"description": "only runs finished at or after (ISO 8601)"},
    )
    to = fields.AwareDateTime(
        default_timezone=UTC,
        validate=within_utc_range,
        metadata={"description": "only runs finished at or before"},
    )
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": "the newest this many results of the case in the window"},
    )


class TrendPointSchema(Schema):
    run_id = fields.String()
    finished_at = fields.DateTime()
    device_id = fields.String()
    device_name = fields.String()
    model = fields.String()
    firmware_version = fields.String()
    value = fields.Float()
    verdict = fields.String()


class FirmwareChangeSchema(Schema):
    device_id = fields.String()
    at = fields.DateTime(metadata={"description": "when the run on the new firmware finished"})
    run_id = fields.String()
    previous = fields.String()
    firmware_version = fields.String()


class DayRateSchema(Schema):
    day = fields.Date(metadata={"description": "UTC day the runs finished"})
    # "pass" is a Python keyword: the attribute is named apart from the key
    pass_ = fields.Integer(data_key="pass")
    fail = fields.Integer()
    inconclusive = fields.Integer()


class TrendSchema(Schema):
    test_case_id = fields.String()
    test_case_name = fields.String()
    metric = fields.String(allow_none=True)
    metrics = fields.List(fields.String(), metadata={"description": "metrics to choose from"})
    condition = fields.String(allow_none=True)
    threshold = fields.Float(allow_none=True)
    unit = fields.String()
    points = fields.List(fields.Nested(TrendPointSchema), metadata={"description": "oldest first"})
    firmware_changes = fields.List(
        fields.Nested(FirmwareChangeSchema),
        metadata={"description": "points whose firmware differs from the device's previous one"},
    )
    pass_rate = fields.List(fields.Nested(DayRateSchema))
    results = fields.Integer(metadata={"description": "results in the window (at most limit)"})
    truncated = fields.Boolean(metadata={"description": "limit cut the window: older may exist"})


@blp.route("/test-cases/<test_case_id>/trend")
class TestCaseTrend(MethodView):
    @requires(Permission.READ)
    @blp.arguments(TrendQuerySchema, location="query")
    @blp.response(200, TrendSchema)
    @blp.alt_response(404, description="no such test case")
    @inject
    def get(self, args, test_case_id, show: ShowTrend = Provide["show_trend"]):
        """A test case's trend: one metric's values over time, firmware changes, pass rate

        From the newest `limit` results of completed runs of the case (in the window, on the
        model or device), oldest first. Threshold and condition are the case's current ones."""
        trend = show(
            TrendRequest(
                test_case_id,
                metric=args.get("metric"),
                model=args.get("model"),
                device_id=args.get("device_id"),
                finished_from=args.get("from_"),
                finished_to=args.get("to"),
                limit=args["limit"],
            )
        )
        return json_response(
            {
                "test_case_id": trend.test_case_id,
                "test_case_name": trend.test_case_name,
                "metric": trend.metric,
                "metrics": trend.metrics,
                "condition": trend.condition,
                "threshold": trend.threshold,
                "unit": trend.unit,
                "points": [
                    {
                        "run_id": p.result.run_id,
                        "finished_at": iso(p.result.finished_at),
                        "device_id": p.result.device_id,
                        "device_name": p.result.device_name,
                        "model": p.result.model,
                        "firmware_version": p.result.firmware,
                        "value": p.value,
                        "verdict": p.result.verdict,
                    }
                    for p in trend.points
                ],
                "firmware_changes": [
                    {
                        "device_id": c.device_id,
                        "at": iso(c.at),
                        "run_id": c.run_id,
                        "previous": c.previous,
                        "firmware_version": c.firmware,
                    }
                    for c in trend.firmware_changes
                ],
                "pass_rate": [
                    {
                        "day": d.day.isoformat(),
                        "pass": d.passed,
                        "fail": d.failed,
                        "inconclusive": d.inconclusive,
                    }
                    for d in trend.pass_rate
                ],
                "results": trend.results,
                "truncated": trend.truncated,
            }
        )
