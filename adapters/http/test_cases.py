"""/api/test-cases: what to test and how success is judged."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.json_fields import JsonInteger, JsonNumber
from adapters.http.list_etags import LIST_ETAG_DOC, list_etag, not_modified, with_etag
from adapters.http.pagination import PageQuerySchema, page_schema
from adapters.http.security import current_principal, requires
from application.ports import NameFilter
from application.use_cases.catalog import (
    CreateTestCase,
    CriterionInput,
    DeleteTestCase,
    ExecutionInput,
    GetTestCase,
    ListTestCases,
    TestCaseInput,
    UpdateTestCase,
)
from application.use_cases.lab_version import ReadLabVersion
from domain.execution import EXECUTORS, MAX_ARGUMENT_LENGTH, MAX_COMMAND_ARGUMENTS
from domain.test_cases import MAX_TIMEOUT_S, Condition, Criterion, Statistic
from domain.users import Permission

blp = Blueprint(
    "test_cases", __name__, url_prefix="/api/test-cases", description="Test cases and criteria"
)

CONDITIONS = [c.value for c in Condition]
STATISTICS = [s.value for s in Statistic]
_seconds = validate.Range(min=0, max=MAX_TIMEOUT_S)


class MarginalBandSchema(Schema):
    min = JsonNumber(load_default=None, allow_none=True)
    max = JsonNumber(load_default=None, allow_none=True)


class CriterionSchema(Schema):
    """Which numbers a criterion needs depends on its condition (domain.test_cases.Criterion
    checks them: a missing or extra one is a 422 that names it)."""

    metric = fields.String(required=True, validate=validate.Length(min=1, max=200))
    condition = fields.String(required=True, validate=validate.OneOf(CONDITIONS))
    threshold = JsonNumber(
        load_default=None, allow_none=True, metadata={"description": "for < <= > >= == !="}
    )
    min = JsonNumber(load_default=None, allow_none=True, metadata={"description": "between"})
    max = JsonNumber(load_default=None, allow_none=True, metadata={"description": "between"})
    nominal = JsonNumber(
        load_default=None, allow_none=True, metadata={"description": "within_percent"}
    )
    percent = JsonNumber(
        load_default=None,
        allow_none=True,
        metadata={"description": "within_percent: the allowed deviation, > 0"},
    )
    unit = fields.String(load_default="", validate=validate.Length(max=50))
    of = fields.String(
        load_default="final",
        validate=validate.OneOf(STATISTICS),
        metadata={"description": "what of the samples is judged: " + ", ".join(STATISTICS)},
    )
    marginal = fields.Nested(
        MarginalBandSchema,
        load_default=None,
        allow_none=True,
        metadata={"description": "a passing value in min..max is marginal (a pass, warned)"},
    )


class CriterionOutSchema(Schema):
    """Every key of every kind; the numbers a condition does not use are null."""

    metric = fields.String()
    condition = fields.Function(lambda c: c.condition.value, metadata={"enum": CONDITIONS})
    threshold = fields.Float(allow_none=True)
    min = fields.Float(allow_none=True)
    max = fields.Float(allow_none=True)
    nominal = fields.Float(allow_none=True)
    percent = fields.Float(allow_none=True)
    unit = fields.String()
    of = fields.Function(lambda c: c.of.value, metadata={"enum": STATISTICS})
    marginal = fields.Nested(MarginalBandSchema, allow_none=True)


def criterion_out(criterion: Criterion) -> dict[str, Any]:
    """What CriterionOutSchema dumps, built directly (adapters/http/json_bodies.py)."""
    band = criterion.marginal
    return {
        "metric": criterion.metric,
        "condition": criterion.condition.value,
        "threshold": criterion.threshold,
        "min": criterion.min,
        "max": criterion.max,
        "nominal": criterion.nominal,
        "percent": criterion.percent,
        "unit": criterion.unit,
        "of": criterion.of.value,
        "marginal": None if band is None else {"min": band.min, "max": band.max},
    }


class ExecutionSchema(Schema):
    """How the case is executed. Setting anything but the default needs permission
    executions:define (admins)."""

    executor = fields.String(
        load_default="",
        validate=validate.OneOf(["", *EXECUTORS]),
        metadata={"description": "simulate, command or influxdb; empty: the runner's default"},
    )
    command = fields.List(
        fields.String(validate=validate.Length(max=MAX_ARGUMENT_LENGTH)),
        load_default=list,
        validate=validate.Length(max=MAX_COMMAND_ARGUMENTS),
        metadata={"description": "the command executor's program and fixed arguments; no shell"},
    )
    per_device = fields.Boolean(
        load_default=True,
        metadata={"description": "false: the command runs once for all the run's devices"},
    )


class ExecutionOutSchema(Schema):
    executor = fields.String()
    command = fields.List(fields.String())
    per_device = fields.Boolean()


_parameters = fields.Dict(
    keys=fields.String(validate=validate.Length(min=1, max=100)),
    values=fields.Raw(),
    validate=validate.Length(max=100),
)
_tags = fields.List(
    fields.String(validate=validate.Length(min=1, max=50)), validate=validate.Length(max=20)
)


class TestCaseSchema(Schema):
    __test__ = False

    id = fields.String(dump_only=True)
    name = fields.String()
    description = fields.String()
    criteria = fields.List(fields.Nested(CriterionOutSchema))
    duration_s = fields.Integer()
    timeout_s = fields.Integer()
    default_parameters = fields.Dict(keys=fields.String(), values=fields.Raw())
    tags = fields.List(fields.String())
    execution = fields.Nested(ExecutionOutSchema)
    version = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TestCaseWriteSchema(Schema):
    __test__ = False

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    criteria = fields.List(
        fields.Nested(CriterionSchema), required=True, validate=validate.Length(min=1, max=50)
    )
    duration_s = JsonInteger(load_default=60, validate=_seconds)
    timeout_s = JsonInteger(load_default=300, validate=_seconds)
    default_parameters = _parameters
    tags = _tags
    execution = fields.Nested(ExecutionSchema, load_default=dict)


class TestCasePatchSchema(Schema):
    __test__ = False

    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    criteria = fields.List(fields.Nested(CriterionSchema), validate=validate.Length(min=1, max=50))
    duration_s = JsonInteger(validate=_seconds)
    timeout_s = JsonInteger(validate=_seconds)
    default_parameters = _parameters
    tags = _tags
    execution = fields.Nested(ExecutionSchema)


class TestCaseQuerySchema(PageQuerySchema):
    __test__ = False

    q = fields.String(validate=validate.Length(max=200), metadata={"description": "text in name"})
    tag = fields.String(validate=validate.Length(max=50))


TestCasePageSchema = page_schema(TestCaseSchema, "TestCasePageSchema")


def _criteria(raw: list[dict]) -> list[CriterionInput]:
    return [CriterionInput(**c) for c in raw]


def _may_define_execution() -> bool:
    return current_principal().can(Permission.DEFINE_EXECUTION)


@blp.route("")
class TestCases(MethodView):
    @requires(Permission.READ)
    @blp.arguments(TestCaseQuerySchema, location="query")
    @blp.response(200, TestCasePageSchema)
    @blp.doc(**LIST_ETAG_DOC)
    @inject
    def get(
        self,
        args,
        list_cases: ListTestCases = Provide["list_test_cases"],
        lab_version: ReadLabVersion = Provide["read_lab_version"],
    ):
        """List test cases"""
        etag = list_etag(lab_version(), args)
        if (unchanged := not_modified(etag)) is not None:
            return unchanged
        page = list_cases(
            NameFilter(text=args.get("q") or None, tag=args.get("tag") or None),
            args["limit"],
            args["cursor"],
        )
        return with_etag({"items": page.items, "next_cursor": page.next_cursor}, etag)

    @requires(Permission.EDIT_CATALOG)
    @blp.arguments(TestCaseWriteSchema)
    @blp.response(201, TestCaseSchema)
    @inject
    def post(self, data, create: CreateTestCase = Provide["create_test_case"]):
        """Create a test case

        A non-default `execution` needs permission executions:define (admins)."""
        data["criteria"] = _criteria(data["criteria"])
        data["execution"] = ExecutionInput(**data["execution"])
        return create(TestCaseInput(**data), _may_define_execution())


@blp.route("/<test_case_id>")
class TestCaseById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, TestCaseSchema)
    @inject
    def get(self, test_case_id, get_case: GetTestCase = Provide["get_test_case"]):
        """Get one test case (its current version)"""
        return get_case(test_case_id)

    @requires(Permission.EDIT_CATALOG)
    @blp.arguments(TestCasePatchSchema)
    @blp.response(200, TestCaseSchema)
    @inject
    def patch(self, changes, test_case_id, update: UpdateTestCase = Provide["update_test_case"]):
        """Edit a test case; a real change bumps its version. Past runs keep their snapshot.

        Changing `execution` needs permission executions:define (admins)."""
        if "criteria" in changes:
            changes["criteria"] = _criteria(changes["criteria"])
        if "execution" in changes:
            changes["execution"] = ExecutionInput(**changes["execution"])
        return update(test_case_id, changes, _may_define_execution())

    @requires(Permission.EDIT_CATALOG)
    @blp.response(204)
    @inject
    def delete(self, test_case_id, delete: DeleteTestCase = Provide["delete_test_case"]):
        """Delete a test case; runs that used it stay readable"""
        delete(test_case_id)
