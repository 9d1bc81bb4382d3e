"""/auth: the auth service's HTTP API — sign in and out, one's sessions and password, and (for
admins) the users and service accounts. API tokens are in api_tokens.py.

Login is rate limited with flask-limiter, per client IP and per account: once the failed
attempts of either reach the limit, every login for it (right password or not) answers 429
with Retry-After until the window has moved on. The counters are shared by every process of
an instance: in Redis when DEVICELAB_REDIS_URL is set, else in the auth store's database (the
storage is chosen by the entrypoint; in memory only for tests)."""

from __future__ import annotations

import hashlib
import logging
import math
import time

from dependency_injector.wiring import Provide, inject
from flask import Flask, g, jsonify, request
from flask.views import MethodView
from flask_limiter import Limiter, RateLimitExceeded
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from adapters.http.api_tokens import ApiTokenSchema
from adapters.http.api_tokens import blp as api_tokens_blp
from adapters.http.errors import DevicelabApi, error_body, register_domain_error_handler
from adapters.http.json_limits import refuse_unreadable_json
from adapters.http.nul_characters import refuse_nul_characters
from adapters.http.pagination import PageQuerySchema, page_schema
from adapters.http.response_headers import protect_api_answers
from adapters.http.security import (
    SIGNED_IN,
    api_token_usable,
    before_password_change,
    current_principal,
    document_bearer_scheme,
    public,
    requires,
)
from application.auth.ports import Principal
from application.auth.service_accounts import (
    CreateServiceAccount,
    CreateServiceAccountRequest,
)
from application.auth.sessions import (
    EndOtherSessions,
    GetSession,
    ListSessions,
    Login,
    LoginRequest,
    Logout,
    RevokeSession,
)
from application.auth.users import (
    ChangePassword,
    ChangePasswordRequest,
    CreateUser,
    CreateUserRequest,
    GetUser,
    ListUsers,
    ResetPassword,
    UpdateUser,
    UserChanges,
)
from domain.users import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH, Permission, Role

log = logging.getLogger("devicelab.auth")

blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/auth",
    description="Sign in and out, sessions, passwords and users (the auth service)",
)

ROLES = [r.value for r in Role]
_password = fields.String(required=True, metadata={"description": "8–128 characters"})


class UserSchema(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    role = fields.Function(lambda u: u.role.value, metadata={"enum": ROLES})
    disabled = fields.Boolean()
    must_change_password = fields.Boolean(
        metadata={"description": "signed in with a temporary password that must be changed"}
    )
    service_account = fields.Boolean(
        metadata={"description": "a pipeline's identity: no password, uses API tokens only"}
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class UserSummarySchema(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    role = fields.Function(lambda u: u.role.value, metadata={"enum": ROLES})
    must_change_password = fields.Boolean(
        metadata={
            "description": "the password is a temporary one: this session can only change it "
            "(POST /auth/password), read /auth/session and log out"
        }
    )


class SessionSchema(Schema):
    id = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime()
    expires_at = fields.DateTime(
        metadata={"description": "when the session ends unless it is used again before"}
    )
    absolute_expires_at = fields.DateTime(
        metadata={"description": "when the session ends however much it is used"}
    )
    user_agent = fields.String()
    client_ip = fields.String(
        metadata={"description": "where the session was opened from, as the server saw it"}
    )
    current = fields.Function(
        lambda s: s.id == getattr(getattr(g, "principal", None), "session_id", None),
        metadata={"description": "the session of the token this request carries"},
    )


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=EMAIL_MAX_LENGTH))
    password = fields.String(required=True, validate=validate.Length(min=1, max=128))


class LoginResultSchema(Schema):
    token = fields.String(metadata={"description": "send as `Authorization: Bearer <token>`"})
    token_type = fields.String(metadata={"enum": ["Bearer"]})
    expires_at = fields.DateTime(metadata={"description": "unless used again before"})
    user = fields.Nested(UserSummarySchema)
    session = fields.Nested(SessionSchema)


class SessionViewSchema(Schema):
    user = fields.Nested(UserSchema)
    session = fields.Nested(
        SessionSchema, allow_none=True, metadata={"description": "null for an API token"}
    )
    api_token = fields.Nested(
        ApiTokenSchema,
        allow_none=True,
        metadata={"description": "the API token this request carries; null for a session"},
    )


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True)
    new_password = _password


class PasswordChangedSchema(Schema):
    other_sessions_ended = fields.Integer()


class OtherSessionsEndedSchema(Schema):
    sessions_ended = fields.Integer()


class PasswordResetSchema(Schema):
    user = fields.Nested(UserSchema)
    temporary_password = fields.String(
        metadata={
            "description": "shown only in this answer: hand it to the user through a safe "
            "channel; they must change it when they sign in"
        }
    )
    sessions_ended = fields.Integer()


class UserCreateSchema(Schema):
    email = fields.String(
        validate=validate.Length(min=1, max=EMAIL_MAX_LENGTH),
        metadata={
            "description": "required for a person; a service account's defaults to "
            "<name>@service.invalid"
        },
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=NAME_MAX_LENGTH))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    password = fields.String(
        metadata={
            "description": "8–128 characters; required for a person, refused for a service account"
        }
    )
    service_account = fields.Boolean(
        load_default=False,
        metadata={
            "description": "a pipeline's identity (e.g. ci-firmware): it has no password, "
            "cannot sign in, and acts through API tokens an admin makes for it"
        },
    )

    @validates_schema
    def _person_or_service(self, data, **_kwargs):
        if data["service_account"]:
            if "password" in data:
                raise ValidationError("a service account has no password", field_name="password")
            return
        missing = {f: ["required for a person"] for f in ("email", "password") if f not in data}
        if missing:
            raise ValidationError(missing)


class UserPatchSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=NAME_MAX_LENGTH))
    role = fields.String(validate=validate.OneOf(ROLES))
    disabled = fields.Boolean(
        metadata={"description": "a disabled user cannot sign in; disabling ends their sessions"}
    )

    @validates_schema
    def _changes_something(self, data, **_kwargs):
        if not data:
            raise ValidationError("nothing to change: give name, role or disabled")


class AuthHealthSchema(Schema):
    status = fields.String()


SessionPageSchema = page_schema(SessionSchema, "SessionPageSchema")
UserPageSchema = page_schema(UserSchema, "UserPageSchema")
NO_STORE = {"Cache-Control": "no-store"}  # answers with tokens must not be cached anywhere


@blp.route("/health")
@public
class AuthHealth(MethodView):
    @blp.response(200, AuthHealthSchema)
    def get(self):
        """The auth service is up"""
        return {"status": "ok"}


@blp.route("/login")
@public
class LoginView(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, LoginResultSchema)
    @blp.alt_response(401, "UNAUTHORIZED")
    @blp.alt_response(429, "TOO_MANY_REQUESTS")
    @inject
    def post(self, data, login: Login = Provide["login"]):
        """Sign in with email and password; answers a session token

        A wrong email and a wrong password get the same answer. Too many failed attempts from
        one address or for one account get 429 with Retry-After."""
        result = login(
            LoginRequest(
                email=data["email"],
                password=data["password"],
                client_ip=request.remote_addr or "",
                user_agent=request.user_agent.string or "",
            )
        )
        g.principal = Principal.of(result.user, result.session)  # the session is this one
        body = {
            "token": result.token,
            "token_type": "Bearer",
            "expires_at": result.session.expires_at,
            "user": result.user,
            "session": result.session,
        }
        return body, 200, NO_STORE


@blp.route("/logout")
class LogoutView(MethodView):
    @before_password_change
    @requires(SIGNED_IN)
    @blp.response(204)
    @inject
    def post(self, logout: Logout = Provide["logout"]):
        """End this session: its token is refused from now on"""
        logout(current_principal().session_id)


@blp.route("/session")
class CurrentSession(MethodView):
    @api_token_usable
    @before_password_change
    @requires(SIGNED_IN)
    @blp.response(200, SessionViewSchema)
    @inject
    def get(self, get_session: GetSession = Provide["get_session"]):
        """Who the token belongs to, and its session (or, for an API token, the token)"""
        view = get_session(current_principal())
        body = {"user": view.user, "session": view.session, "api_token": view.api_token}
        return body, 200, NO_STORE


@blp.route("/sessions")
class Sessions(MethodView):
    @requires(SIGNED_IN)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, SessionPageSchema)
    @inject
    def get(self, args, list_sessions: ListSessions = Provide["list_sessions"]):
        """One's own live sessions, newest first"""
        page = list_sessions(current_principal().user_id, args["limit"], args["cursor"])
        return {"items": page.items, "next_cursor": page.next_cursor}


@blp.route("/sessions/end-others")
class OtherSessions(MethodView):
    @requires(SIGNED_IN)
    @blp.response(200, OtherSessionsEndedSchema)
    @inject
    def post(self, end_others: EndOtherSessions = Provide["end_other_sessions"]):
        """End every one of one's sessions except this one"""
        return {"sessions_ended": end_others(current_principal())}


@blp.route("/sessions/<session_id>")
class SessionById(MethodView):
    @requires(SIGNED_IN)
    @blp.response(204)
    @blp.alt_response(404, "NOT_FOUND")
    @inject
    def delete(self, session_id, revoke: RevokeSession = Provide["revoke_session"]):
        """End one of one's own sessions (e.g. a lost laptop's)"""
        revoke(current_principal().user_id, session_id)


@blp.route("/password")
class Password(MethodView):
    @before_password_change
    @requires(SIGNED_IN)
    @blp.arguments(PasswordChangeSchema)
    @blp.response(200, PasswordChangedSchema)
    @inject
    def post(self, data, change: ChangePassword = Provide["change_password"]):
        """Change one's own password; ends every other session of the user

        After a sign-in with a temporary password (an admin's reset) this is the one thing
        the session may do; the current password is then the temporary one."""
        ended = change(
            current_principal(),
            ChangePasswordRequest(data["current_password"], data["new_password"]),
        )
        return {"other_sessions_ended": ended}


@blp.route("/users")
class Users(MethodView):
    @requires(Permission.MANAGE_USERS)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, UserPageSchema)
    @inject
    def get(self, args, list_users: ListUsers = Provide["list_users"]):
        """List users, by email"""
        page = list_users(args["limit"], args["cursor"])
        return {"items": page.items, "next_cursor": page.next_cursor}

    @requires(Permission.MANAGE_USERS)
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @inject
    def post(
        self,
        data,
        create_user: CreateUser = Provide["create_user"],
        create_service_account: CreateServiceAccount = Provide["create_service_account"],
    ):
        """Create a user, or a service account (`service_account: true`, no password)"""
        if data.pop("service_account"):
            return create_service_account(
                CreateServiceAccountRequest(data["name"], data["role"], data.get("email")),
                by=current_principal().user_id,
            )
        return create_user(CreateUserRequest(**data))


@blp.route("/users/<user_id>")
class UserById(MethodView):
    @requires(Permission.MANAGE_USERS)
    @blp.response(200, UserSchema)
    @inject
    def get(self, user_id, get_user: GetUser = Provide["get_user"]):
        """One user"""
        return get_user(user_id)

    @requires(Permission.MANAGE_USERS)
    @blp.arguments(UserPatchSchema)
    @blp.response(200, UserSchema)
    @inject
    def patch(self, changes, user_id, update_user: UpdateUser = Provide["update_user"]):
        """Change a user's name or role, disable or re-enable them

        Disabling ends all their sessions. The last enabled admin can be neither demoted nor
        disabled (409)."""
        return update_user(user_id, UserChanges(**changes))


@blp.route("/users/<user_id>/reset-password")
class UserPasswordReset(MethodView):
    @requires(Permission.MANAGE_USERS)
    @blp.response(200, PasswordResetSchema)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.alt_response(409, "CONFLICT")
    @inject
    def post(self, user_id, reset: ResetPassword = Provide["reset_password"]):
        """Give a user a temporary password, for one who forgot theirs

        The answer holds the temporary password, once. It ends all the user's sessions; when
        they sign in with it, they must choose their own password before doing anything else.
        One's own password cannot be reset (409): change it instead."""
        result = reset(user_id, by=current_principal().user_id)
        body = {
            "user": result.user,
            "temporary_password": result.temporary_password,
            "sessions_ended": result.sessions_ended,
        }
        return body, 200, NO_STORE


# -- rate limits ----------------------------------------------------------------------------


def _client_ip() -> str:
    # Behind a reverse proxy this is the proxy, unless DEVICELAB_TRUSTED_PROXIES says how many
    # proxies' X-Forwarded-For to believe (see security.trust_reverse_proxies).
    return request.remote_addr or "unknown"


def _account_key() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    email = email.strip().lower()[:EMAIL_MAX_LENGTH] if isinstance(email, str) else ""
    # hashed: the rate limit store (maybe a shared Redis) need not learn who signs in
    return "account:" + hashlib.sha256(email.encode(errors="replace")).hexdigest()


def _principal_key() -> str:
    principal = getattr(g, "principal", None)
    return f"user:{principal.user_id}" if principal else f"ip:{_client_ip()}"


def _failed_login(response) -> bool:
    return response.status_code == 401


def _refused_password_change(response) -> bool:
    return response.status_code == 422


def install_auth_rate_limits(
    app: Flask, limit: str, storage_uri: str = "", storage_options: dict | None = None
) -> Limiter:
    """Limit failed logins per client IP and per account, and refused password changes per
    user, to `limit` (e.g. "10/minute") each, counted in the `limits` storage `storage_uri`."""
    limiter = Limiter(
        key_func=_client_ip,
        storage_uri=storage_uri or "memory://",
        storage_options=storage_options or {},
        strategy="moving-window",
        key_prefix="devicelab-auth",
        headers_enabled=False,  # Retry-After goes on 429 answers only (below)
        in_memory_fallback_enabled=True,  # storage down: count in memory, never fail logins
        swallow_errors=True,
    )
    limiter.init_app(app)

    per_ip = limiter.limit(
        limit, key_func=lambda: f"ip:{_client_ip()}", scope="login-ip", deduct_when=_failed_login
    )
    per_account = limiter.limit(
        limit, key_func=_account_key, scope="login-account", deduct_when=_failed_login
    )
    per_user = limiter.limit(
        limit, key_func=_principal_key, scope="password", deduct_when=_refused_password_change
    )
    login_endpoint = f"{blp.name}.{LoginView.__name__}"
    password_endpoint = f"{blp.name}.{Password.__name__}"
    app.view_functions[login_endpoint] = per_ip(per_account(app.view_functions[login_endpoint]))
    app.view_functions[password_endpoint] = per_user(app.view_functions[password_endpoint])
    # The two views check their limits themselves (the decorators above). The limiter's hook
    # before every request only looked for application-wide limits, which are not set: a
    # twentieth of the CPU time of every other request (the device list's included).
    app.before_request_funcs[None].remove(limiter._check_request_limit)

    @app.errorhandler(RateLimitExceeded)
    def too_many_attempts(error: RateLimitExceeded):
        current = limiter.current_limit
        reset_at = current.reset_at if current else time.time() + 60
        window = error.limit.limit.get_expiry()
        retry_after = min(window, max(1, math.ceil(reset_at - time.time())))
        log.warning(
            "rate limit %s hit on %s from ip=%s; retry after %d s",
            error.limit.limit,
            request.path,
            _client_ip(),
            retry_after,
        )
        body = error_body(
            "too_many_requests",
            f"too many failed attempts; try again in {retry_after} seconds",
        )
        body["retry_after"] = retry_after
        return jsonify(body), 429, {"Retry-After": str(retry_after)}

    return limiter


def install_auth_api(
    app: Flask,
    api,
    rate_limit: str,
    rate_limit_storage_uri: str = "",
    rate_limit_storage_options: dict | None = None,
) -> None:
    """Serve /auth on `app`, documented in `api`'s OpenAPI spec."""
    api.register_blueprint(blp)
    api.register_blueprint(api_tokens_blp)
    install_auth_rate_limits(app, rate_limit, rate_limit_storage_uri, rate_limit_storage_options)


def install_auth_service(
    app: Flask,
    rate_limit: str,
    rate_limit_storage_uri: str = "",
    rate_limit_storage_options: dict | None = None,
):
    """The auth service alone (its own WSGI app): /auth, its OpenAPI document at
    /auth/openapi.json and Swagger UI at /auth/docs."""
    from adapters.http.api import OPENAPI_SETTINGS, install_docs_page

    settings = {**OPENAPI_SETTINGS, "API_TITLE": "devicelab auth", "OPENAPI_URL_PREFIX": "/auth"}
    for key, value in settings.items():
        app.config.setdefault(key, value)
    api = DevicelabApi(app)
    register_domain_error_handler(app)
    refuse_unreadable_json(app)  # before anything parses the body
    refuse_nul_characters(app)
    protect_api_answers(app)
    document_bearer_scheme(api)
    install_docs_page(app)
    install_auth_api(app, api, rate_limit, rate_limit_storage_uri, rate_limit_storage_options)
    return api
