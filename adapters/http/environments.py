"""/api/environments: the conditions runs execute under."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.list_etags import LIST_ETAG_DOC, list_etag, not_modified, with_etag
from adapters.http.pagination import PageQuerySchema, page_schema
from adapters.http.security import requires
from application.ports import NameFilter
from application.use_cases.catalog import (
    CreateEnvironment,
    DeleteEnvironment,
    EnvironmentInput,
    GetEnvironment,
    ListEnvironments,
    UpdateEnvironment,
)
from application.use_cases.lab_version import ReadLabVersion
from domain.environments import VARIABLE_NAME_MAX_LENGTH, VARIABLE_NAME_PATTERN
from domain.users import Permission

blp = Blueprint(
    "environments", __name__, url_prefix="/api/environments", description="Test environments"
)

# names: a pattern, not a free text, and not one that changes how programs run (the domain
# refuses those: domain/environments.py)
_variables = fields.Dict(
    keys=fields.String(
        validate=[
            validate.Length(min=1, max=VARIABLE_NAME_MAX_LENGTH),
            validate.Regexp(f"^{VARIABLE_NAME_PATTERN.pattern}$"),
        ]
    ),
    values=fields.String(validate=validate.Length(max=1000)),
    validate=validate.Length(max=100),
)


class EnvironmentSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String()
    description = fields.String()
    variables = fields.Dict(keys=fields.String(), values=fields.String())
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class EnvironmentWriteSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    variables = _variables


class EnvironmentPatchSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    variables = _variables


class EnvironmentQuerySchema(PageQuerySchema):
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "text in name"})


EnvironmentPageSchema = page_schema(EnvironmentSchema, "EnvironmentPageSchema")


@blp.route("")
class Environments(MethodView):
    @requires(Permission.READ)
    @blp.arguments(EnvironmentQuerySchema, location="query")
    @blp.response(200, EnvironmentPageSchema)
    @blp.doc(**LIST_ETAG_DOC)
    @inject
    def get(
        self,
        args,
        list_environments: ListEnvironments = Provide["list_environments"],
        lab_version: ReadLabVersion = Provide["read_lab_version"],
    ):
        """List environments"""
        etag = list_etag(lab_version(), args)
        if (unchanged := not_modified(etag)) is not None:
            return unchanged
        page = list_environments(
            NameFilter(text=args.get("q") or None), args["limit"], args["cursor"]
        )
        return with_etag({"items": page.items, "next_cursor": page.next_cursor}, etag)

    @requires(Permission.EDIT_CATALOG)
    @blp.arguments(EnvironmentWriteSchema)
    @blp.response(201, EnvironmentSchema)
    @inject
    def post(self, data, create: CreateEnvironment = Provide["create_environment"]):
        """Create an environment"""
        return create(EnvironmentInput(**data))


@blp.route("/<environment_id>")
class EnvironmentById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, EnvironmentSchema)
    @inject
    def get(self, environment_id, get_env: GetEnvironment = Provide["get_environment"]):
        """Get one environment"""
        return get_env(environment_id)

    @requires(Permission.EDIT_CATALOG)
    @blp.arguments(EnvironmentPatchSchema)
    @blp.response(200, EnvironmentSchema)
    @inject
    def patch(
        self, changes, environment_id, update: UpdateEnvironment = Provide["update_environment"]
    ):
        """Edit an environment"""
        return update(environment_id, changes)

    @requires(Permission.EDIT_CATALOG)
    @blp.response(204)
    @inject
    def delete(self, environment_id, delete: DeleteEnvironment = Provide["delete_environment"]):
        """Delete an environment; runs that used it keep their snapshot"""
        delete(environment_id)
