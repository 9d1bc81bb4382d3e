"""/auth/tokens: API tokens for scripts and pipelines (part of the auth service).

A signed-in user makes, lists and revokes their own; an admin also lists and revokes anyone's
and makes tokens for service accounts (`user_id`). The token itself is in the answer to its
creation only. None of this can be done with an API token (403 `api_token_not_allowed`)."""

from __future__ import annotations

from types import SimpleNamespace

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.pagination import PageQuerySchema, page_schema
from adapters.http.security import SIGNED_IN, current_principal, requires
from application.auth.api_tokens import (
    CreateApiToken,
    CreateApiTokenRequest,
    ListApiTokens,
    RevokeApiToken,
)
from domain.api_tokens import TOKEN_NAME_MAX_LENGTH, TokenPolicy, TokenScope

blp = Blueprint(
    "auth-tokens",
    __name__,
    url_prefix="/auth",
    description="API tokens: `Authorization: Bearer dlp_…` for scripts and pipelines",
)

SCOPES = [s.value for s in TokenScope]
NO_STORE = {"Cache-Control": "no-store"}  # the answer holds a token


class ApiTokenSchema(Schema):
    id = fields.String()
    user_id = fields.String(metadata={"description": "whose token it is"})
    name = fields.String()
    scope = fields.Function(
        lambda t: t.scope.value,
        metadata={
            "enum": SCOPES,
            "description": "read: see everything the owner may; run: also start and cancel "
            "runs and holds; full: whatever the owner's role allows. Never more than the "
            "owner's role at the time of use.",
        },
    )
    created_at = fields.DateTime()
    created_by = fields.String(metadata={"description": "user id of whoever made it"})
    expires_at = fields.DateTime(allow_none=True, metadata={"description": "null: never"})
    last_used_at = fields.DateTime(
        allow_none=True, metadata={"description": "recorded at most once a minute"}
    )


class ApiTokenCreatedSchema(ApiTokenSchema):
    token = fields.String(
        metadata={
            "description": "the token, shown in this answer only: send it as "
            "`Authorization: Bearer <token>`"
        }
    )


class ApiTokenCreateSchema(Schema):
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=TOKEN_NAME_MAX_LENGTH),
        metadata={"description": "what it is for, e.g. `firmware CI`"},
    )
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES))
    expires_in_days = fields.Integer(
        load_default=30,
        allow_none=True,
        strict=True,
        metadata={
            "description": "1 to the server's maximum (DEVICELAB_TOKEN_MAX_DAYS, default 90); "
            "null for no expiry, if the server allows it (DEVICELAB_TOKEN_ALLOW_NO_EXPIRY)"
        },
    )
    user_id = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "admins: make it for this service account"},
    )


class ApiTokenQuerySchema(PageQuerySchema):
    user_id = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "admins: this user's tokens (default: one's own)"},
    )


class TokenPolicySchema(Schema):
    max_days = fields.Integer(metadata={"description": "the longest expiry one may choose"})
    allow_no_expiry = fields.Boolean(metadata={"description": "whether tokens may never expire"})


ApiTokenPageSchema = page_schema(ApiTokenSchema, "ApiTokenPageSchema")


@blp.route("/tokens/policy")
class ApiTokenPolicy(MethodView):
    @requires(SIGNED_IN)
    @blp.response(200, TokenPolicySchema)
    @inject
    def get(self, policy: TokenPolicy = Provide["token_policy"]):
        """How long this server lets API tokens live"""
        return policy


@blp.route("/tokens")
class ApiTokens(MethodView):
    @requires(SIGNED_IN)
    @blp.arguments(ApiTokenQuerySchema, location="query")
    @blp.response(200, ApiTokenPageSchema)
    @inject
    def get(self, args, list_tokens: ListApiTokens = Provide["list_api_tokens"]):
        """One's API tokens (an admin: anyone's, with `user_id`), newest first

        Revoked tokens are not listed; expired ones are, until revoked."""
        page = list_tokens(current_principal(), args.get("user_id"), args["limit"], args["cursor"])
        return {"items": page.items, "next_cursor": page.next_cursor}

    @requires(SIGNED_IN)
    @blp.arguments(ApiTokenCreateSchema)
    @blp.response(201, ApiTokenCreatedSchema)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.alt_response(409, "CONFLICT")
    @inject
    def post(self, data, create: CreateApiToken = Provide["create_api_token"]):
        """Make an API token; the answer shows it once

        For oneself, or (admins) for a service account named by `user_id`. Only from a
        signed-in session, not with another API token."""
        created = create(
            current_principal(),
            CreateApiTokenRequest(
                name=data["name"],
                scope=data["scope"],
                expires_in_days=data["expires_in_days"],
                user_id=data.get("user_id"),
            ),
        )
        return SimpleNamespace(**vars(created.token), token=created.secret), 201, NO_STORE


@blp.route("/tokens/<token_id>")
class ApiTokenById(MethodView):
    @requires(SIGNED_IN)
    @blp.response(204)
    @blp.alt_response(404, "NOT_FOUND")
    @inject
    def delete(self, token_id, revoke: RevokeApiToken = Provide["revoke_api_token"]):
        """Revoke an API token (one's own; admins: anyone's); it is refused from now on"""
        revoke(current_principal(), token_id)
