"""/api/compare, /api/regressions, /api/firmware-versions: what changed between firmware
versions (or two runs), the regressions tracked along the firmware order, the flaky cases."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.json_bodies import iso, json_response
from adapters.http.security import requires
from adapters.http.test_runs import within_utc_range
from application.use_cases.comparison import (
    CompareRequest,
    CompareResults,
    ListFirmwareVersions,
    ListRegressions,
    Names,
    RegressionsRequest,
)
from domain.comparison import (
    FLAKY_WINDOW,
    MIN_SAMPLES,
    SPREAD_SIGMAS,
    CaseKey,
    Change,
    FirmwareRef,
    MetricSample,
    Regression,
    RunRef,
    Summary,
)
from domain.users import Permission

blp = Blueprint("comparison", __name__, url_prefix="/api", description="Firmware comparison")

_text = {"validate": validate.Length(min=1, max=200)}
SPREAD_RULE = (
    f"beyond_spread: |difference| > {SPREAD_SIGMAS:g} x the larger sample standard deviation of "
    f"the two sides, with at least {MIN_SAMPLES} values on each (null: fewer)"
)
FLAKY_RULE = (
    f"flaky: both pass and fail among the newest {FLAKY_WINDOW} results of the test case on "
    "the same firmware, model and environment"
)


class FilterSchema(Schema):
    model = fields.String(**_text)
    environment_id = fields.String(**_text)
    test_case_id = fields.String(**_text)


class CompareQuerySchema(FilterSchema):
    base_firmware = fields.String(**_text)
    target_firmware = fields.String(**_text)
    base_run = fields.String(**_text, metadata={"description": "instead of base_firmware"})
    target_run = fields.String(**_text, metadata={"description": "instead of target_firmware"})
    from_ = fields.AwareDateTime(
        data_key="from",
        default_timezone=UTC,
        validate=within_utc_range,
        metadata={"description": "only runs created at or after (ISO 8601)"},
    )
    to = fields.AwareDateTime(
        default_timezone=UTC,
        validate=within_utc_range,
        metadata={"description": "only runs created at or before"},
    )


class RegressionQuerySchema(FilterSchema):
    status = fields.String(validate=validate.OneOf(["open", "closed"]))


class RunRefSchema(Schema):
    run_id = fields.String()
    at = fields.DateTime(metadata={"description": "when the run was created"})


class SideSchema(Schema):
    verdict = fields.String(metadata={"description": "pass, fail, flaky or inconclusive"})
    results = fields.Integer()
    passed = fields.Integer()
    failed = fields.Integer()
    inconclusive = fields.Integer()
    latest_run = fields.Nested(RunRefSchema, allow_none=True)


class MetricSideSchema(Schema):
    count = fields.Integer()
    mean = fields.Float(allow_none=True)
    stddev = fields.Float(allow_none=True)


class MetricComparisonSchema(Schema):
    metric = fields.String()
    unit = fields.String()
    condition = fields.String()
    threshold = fields.Float(allow_none=True)
    base = fields.Nested(MetricSideSchema, allow_none=True)
    target = fields.Nested(MetricSideSchema, allow_none=True)
    difference = fields.Float(allow_none=True, metadata={"description": "target - base mean"})
    direction = fields.String(
        allow_none=True, metadata={"description": "better, worse or same by the criterion"}
    )
    beyond_spread = fields.Boolean(allow_none=True, metadata={"description": SPREAD_RULE})


class CaseKeySchema(Schema):
    test_case_id = fields.String()
    test_case_name = fields.String()
    model = fields.String()
    environment_id = fields.String()
    environment_name = fields.String()


class CaseComparisonSchema(CaseKeySchema):
    change = fields.String(metadata={"description": ", ".join(c.value for c in Change)})
    flaky = fields.Boolean(metadata={"description": FLAKY_RULE})
    base = fields.Nested(SideSchema, allow_none=True)
    target = fields.Nested(SideSchema, allow_none=True)
    metrics = fields.List(fields.Nested(MetricComparisonSchema))


class ComparisonSchema(Schema):
    base = fields.String()
    target = fields.String()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    items = fields.List(fields.Nested(CaseComparisonSchema))


class FirmwareRefSchema(Schema):
    firmware = fields.String()
    run = fields.Nested(RunRefSchema, allow_none=True)


class RegressionSchema(CaseKeySchema):
    status = fields.String(metadata={"description": "open or closed"})
    flaky = fields.Boolean(metadata={"description": "flaky on its newest firmware version"})
    last_passing = fields.Nested(FirmwareRefSchema)
    first_failing = fields.Nested(FirmwareRefSchema)
    fixed_by = fields.Nested(FirmwareRefSchema, allow_none=True)


class FlakySchema(CaseKeySchema):
    firmware = fields.String()
    passed = fields.Integer(metadata={"description": f"among the newest {FLAKY_WINDOW}"})
    failed = fields.Integer(metadata={"description": f"among the newest {FLAKY_WINDOW}"})
    latest_run = fields.Nested(RunRefSchema, allow_none=True)


class RegressionListSchema(Schema):
    items = fields.List(fields.Nested(RegressionSchema))
    flaky = fields.List(fields.Nested(FlakySchema), metadata={"description": FLAKY_RULE})


class FirmwareVersionSchema(Schema):
    version = fields.String()
    first_seen = fields.DateTime(metadata={"description": "when its first result came"})
    results = fields.Integer(metadata={"description": "results of completed runs on it"})


class FirmwareVersionListSchema(Schema):
    items = fields.List(fields.Nested(FirmwareVersionSchema))


def _run(ref: RunRef | None) -> dict[str, Any] | None:
    return None if ref is None else {"run_id": ref.run_id, "at": iso(ref.at)}


def _key(key: CaseKey, names: Names) -> dict[str, Any]:
    return {
        "test_case_id": key.test_case_id,
        "test_case_name": names.test_cases.get(key.test_case_id, key.test_case_id),
        "model": key.model,
        "environment_id": key.environment_id,
        "environment_name": names.environments.get(key.environment_id, key.environment_id),
    }


def _side(summary: Summary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "verdict": summary.verdict.value,
        "results": summary.results,
        "passed": summary.passed,
        "failed": summary.failed,
        "inconclusive": summary.inconclusive,
        "latest_run": _run(summary.newest),
    }


def _metric_side(sample: MetricSample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {"count": sample.count, "mean": sample.mean, "stddev": sample.stddev}


def _firmware(ref: FirmwareRef | None) -> dict[str, Any] | None:
    return None if ref is None else {"firmware": ref.firmware, "run": _run(ref.run)}


@blp.route("/compare")
class Compare(MethodView):
    @requires(Permission.READ)
    @blp.arguments(CompareQuerySchema, location="query")
    @blp.response(200, ComparisonSchema)
    @blp.alt_response(404, description="base_run or target_run does not exist")
    @inject
    def get(self, args, compare: CompareResults = Provide["compare_results"]):
        """Compare two firmware versions (or two runs), per test case x model x environment

        Each side is `base_firmware` or `base_run`, and `target_firmware` or `target_run`;
        only completed runs count. Regressions (pass -> fail) come first, then cases with a
        metric worse beyond the run-to-run spread, then fixes, the unchanged, new and missing."""
        result = compare(
            CompareRequest(
                base_firmware=args.get("base_firmware"),
                target_firmware=args.get("target_firmware"),
                base_run=args.get("base_run"),
                target_run=args.get("target_run"),
                model=args.get("model"),
                environment_id=args.get("environment_id"),
                test_case_id=args.get("test_case_id"),
                created_from=args.get("from_"),
                created_to=args.get("to"),
            )
        )
        counts = {c.value: 0 for c in Change}
        items = []
        for row in result.rows:
            counts[row.change.value] += 1
            items.append(
                {
                    **_key(row.key, result.names),
                    "change": row.change.value,
                    "flaky": row.flaky,
                    "base": _side(row.base),
                    "target": _side(row.target),
                    "metrics": [
                        {
                            "metric": m.metric,
                            "unit": m.unit,
                            "condition": m.condition,
                            "threshold": m.threshold,
                            "base": _metric_side(m.base),
                            "target": _metric_side(m.target),
                            "difference": m.difference,
                            "direction": m.direction.value if m.direction else None,
                            "beyond_spread": m.beyond_spread,
                        }
                        for m in row.metrics
                    ],
                }
            )
        return json_response(
            {"base": result.base, "target": result.target, "counts": counts, "items": items}
        )


def _regression(regression: Regression, names: Names) -> dict[str, Any]:
    return {
        **_key(regression.key, names),
        "status": "open" if regression.open else "closed",
        "flaky": regression.flaky,
        "last_passing": _firmware(regression.last_passing),
        "first_failing": _firmware(regression.first_failing),
        "fixed_by": _firmware(regression.fixed_by),
    }


@blp.route("/regressions")
class RegressionList(MethodView):
    @requires(Permission.READ)
    @blp.arguments(RegressionQuerySchema, location="query")
    @blp.response(200, RegressionListSchema)
    @inject
    def get(self, args, regressions: ListRegressions = Provide["list_regressions"]):
        """Tracked regressions (newest first) and the test cases flaky now

        A regression opens on the first firmware version (in firmware order) on which a test
        case fails on a model and environment where it passed on the version before, and
        closes on the first later version where it passes again. A flaky version neither
        opens nor closes one."""
        status = args.get("status")
        found = regressions(
            RegressionsRequest(
                open=None if status is None else status == "open",
                model=args.get("model"),
                environment_id=args.get("environment_id"),
                test_case_id=args.get("test_case_id"),
            )
        )
        return json_response(
            {
                "items": [_regression(r, found.names) for r in found.regressions],
                "flaky": [
                    {
                        **_key(s.key, found.names),
                        "firmware": s.firmware,
                        "passed": s.recent_passed,
                        "failed": s.recent_failed,
                        "latest_run": _run(s.newest),
                    }
                    for s in found.flaky
                ],
            }
        )


@blp.route("/firmware-versions")
class FirmwareVersions(MethodView):
    @requires(Permission.READ)
    @blp.response(200, FirmwareVersionListSchema)
    @inject
    def get(self, versions: ListFirmwareVersions = Provide["list_firmware_versions"]):
        """The firmware versions with results of completed runs, oldest first

        Versions that read as semantic versions ([v]N.N.N[-pre][+build]) are in version order;
        others in the order they were first seen in a run, between them."""
        return json_response(
            {
                "items": [
                    {"version": f.version, "first_seen": iso(f.first_seen), "results": f.results}
                    for f in versions()
                ]
            }
        )
