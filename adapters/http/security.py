"""Who is calling, and may they do this: the Bearer token check and per-view permissions.

Every request under a protected prefix (/api, /auth) passes `install_authentication`'s hook:
  - views marked `@public` (health, readiness, login) and the OpenAPI docs pass untouched;
    so do the runner callbacks, which are `@public` *for users* and check their own per-run
    credential instead;
  - every other view needs `Authorization: Bearer <session token>` (else 401), and the
    caller's role must allow the permission the view declares with `@requires(...)` for the
    request's method (else 403).
A view that declares nothing is not left open: reading it needs a valid session, changing
anything through it needs the admin role, and a warning names it at startup.
An API token (`Bearer dlp_…`, see application/auth/api_tokens.py) is accepted wherever a
session is under /api, for what both its owner's current role and its scope allow. Under
/auth it opens only the views marked `@api_token_usable` (who am I): a token may not change
a password, make tokens or manage users (403 `api_token_not_allowed`).
A session opened with a temporary password (an admin's reset) may only use the views marked
`@before_password_change` (change the password, say who it is, log out): everything else
answers 403 `password_change_required` until the user has chosen their own password.

`@requires` also writes the view's OpenAPI security requirement and its 401/403 responses, so
the spec (and Swagger UI's "Authorize") shows what each operation needs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from flask import Flask, Request, g, request
from flask_smorest import Blueprint
from flask_smorest.utils import load_info_from_docstring
from werkzeug.middleware.proxy_fix import ProxyFix

from application.auth.errors import (
    Forbidden,
    NotWithApiToken,
    PasswordChangeRequired,
    Unauthenticated,
)
from application.auth.ports import Principal, TokenVerifier
from domain.api_tokens import TokenScope, scope_allows
from domain.users import Permission, roles_with

log = logging.getLogger(__name__)

BEARER_SCHEME = "bearerAuth"
PUBLIC_ENDPOINT_ATTRIBUTE = "_devicelab_public"
PERMISSION_ATTRIBUTE = "_devicelab_permission"
BEFORE_PASSWORD_CHANGE_ATTRIBUTE = "_devicelab_before_password_change"
API_TOKEN_USABLE_ATTRIBUTE = "_devicelab_api_token_usable"
SIGNED_IN = "signed-in"  # any valid session, whatever the role
NO_AUTH_METHODS = frozenset({"OPTIONS"})

F = TypeVar("F", bound=Callable)


class RequestAuthenticator(Protocol):
    def authenticate(self, request: Request) -> Principal:
        """Return who is calling, or raise Unauthenticated."""
        ...


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(
            "sign in first (POST /auth/login) and send the token as `Authorization: Bearer <token>`"
        )
    return token


class BearerAuthenticator:
    """The session token from the Authorization header, checked by a TokenVerifier (in the
    same process, or by asking the auth service)."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier

    def authenticate(self, request: Request) -> Principal:
        return self.verifier.verify(bearer_token(request))


def public(view):
    """Mark a view as reachable without a user session (health, readiness, login, and the
    runner callbacks, which carry their own credential)."""
    setattr(view, PUBLIC_ENDPOINT_ATTRIBUTE, True)
    return view


def before_password_change(func: F) -> F:
    """Let a session that must change its temporary password use this view method too. Put
    it above `@requires`."""
    setattr(func, BEFORE_PASSWORD_CHANGE_ATTRIBUTE, True)
    return func


def api_token_usable(func: F) -> F:
    """Let an API token use this view method where tokens are only let into marked views
    (under /auth). Put it above `@requires`."""
    setattr(func, API_TOKEN_USABLE_ATTRIBUTE, True)
    return func


def _roles_text(permission: Permission | str) -> str:
    if permission == SIGNED_IN:
        return "any signed-in user"
    return "role " + " or ".join(r.value for r in roles_with(Permission(permission)))


def requires(permission: Permission | str) -> Callable[[F], F]:
    """Declare what a view method needs: a Permission, or SIGNED_IN for any valid session.
    Put it above the flask-smorest decorators."""
    if permission != SIGNED_IN:
        permission = Permission(permission)

    def decorator(func: F) -> F:
        info = load_info_from_docstring(func.__doc__ or "")
        needs = f"Needs {_roles_text(permission)}."
        description = f"{info['description']}\n\n{needs}" if info.get("description") else needs
        # 403 also for any role: a session with a temporary password may do almost nothing
        responses: dict[int, str] = {401: "UNAUTHORIZED", 403: "FORBIDDEN"}
        documented = Blueprint.doc(
            security=[{BEARER_SCHEME: []}],
            responses=responses,
            description=description,
            **{"x-permission": str(permission)},
        )(func)
        setattr(documented, PERMISSION_ATTRIBUTE, permission)
        return documented

    return decorator


def document_bearer_scheme(api) -> None:
    api.spec.components.security_scheme(
        BEARER_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A session token (POST /auth/login with your email and password, then paste "
                "the `token` of the answer here) or an API token (`dlp_…`, made with POST "
                "/auth/tokens), which may do what both its scope and its owner's role allow."
            ),
        },
    )


def current_principal() -> Principal:
    principal = getattr(g, "principal", None)
    if principal is None:
        raise Unauthenticated()
    return principal


def current_actor() -> str:
    """Who to record as having done something: the signed-in user's email."""
    principal = getattr(g, "principal", None)
    return principal.email if principal else "anonymous"


def _is_public(view) -> bool:
    view_class = getattr(view, "view_class", None)
    return bool(
        getattr(view, PUBLIC_ENDPOINT_ATTRIBUTE, False)
        or getattr(view_class, PUBLIC_ENDPOINT_ATTRIBUTE, False)
    )


def declared_permission(view, method: str) -> Permission | str | None:
    method = "GET" if method == "HEAD" else method
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, method.lower(), None) if view_class else view
    return getattr(handler, PERMISSION_ATTRIBUTE, None)


def _method_marked(view, method: str, attribute: str) -> bool:
    method = "GET" if method == "HEAD" else method
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, method.lower(), None) if view_class else view
    return bool(getattr(handler, attribute, False))


def _refusal(principal: Principal, needed: Permission) -> Forbidden:
    if principal.scope is not None and principal.can_as_role(needed):
        scopes = " or ".join(s.value for s in TokenScope if scope_allows(s, needed))
        return Forbidden(
            f"this API token's scope ({principal.scope.value}) does not allow this: it needs a "
            f"token of scope {scopes}"
        )
    return Forbidden(
        f"your role ({principal.role.value}) may not do this: it needs {_roles_text(needed)}"
    )


def _fallback_permission(method: str) -> Permission:
    return Permission.READ if method in ("GET", "HEAD") else Permission.MANAGE_USERS


def _undeclared_views(app: Flask, prefix: str) -> list[str]:
    missing = []
    for rule in app.url_map.iter_rules():
        if not (rule.rule == prefix or rule.rule.startswith(prefix + "/")):
            continue
        view = app.view_functions.get(rule.endpoint)
        if view is None or _is_public(view) or rule.endpoint.startswith("api-docs."):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if declared_permission(view, method) is None:
                missing.append(f"{method} {rule.rule}")
    return missing


def install_authentication(
    app: Flask,
    authenticator: RequestAuthenticator,
    prefix: str,
    api_tokens_only_where_marked: bool = False,
) -> None:
    """Authenticate and authorize every request under `prefix` (see the module docstring).
    With `api_tokens_only_where_marked` (the auth service) an API token opens only the views
    marked `@api_token_usable`."""
    docs_paths = (f"{prefix}/docs", f"{prefix}/openapi.json")
    for view in _undeclared_views(app, prefix):
        log.warning(
            "%s declares no permission (@requires): reading it needs a session, writing "
            "needs the admin role",
            view,
        )

    def check() -> None:
        path = request.path
        if not (path == prefix or path.startswith(prefix + "/")):
            return
        if request.method in NO_AUTH_METHODS or path.startswith(docs_paths):
            return
        view = app.view_functions.get(request.endpoint or "")
        if view is None or _is_public(view):
            return  # no such route (404/405 follow), or open on purpose
        principal = authenticator.authenticate(request)
        g.principal = principal
        if principal.password_change_due and not _method_marked(
            view, request.method, BEFORE_PASSWORD_CHANGE_ATTRIBUTE
        ):
            raise PasswordChangeRequired()
        if (
            principal.via_api_token
            and api_tokens_only_where_marked
            and not _method_marked(view, request.method, API_TOKEN_USABLE_ATTRIBUTE)
        ):
            raise NotWithApiToken()
        needed = declared_permission(view, request.method) or _fallback_permission(request.method)
        if needed != SIGNED_IN and not principal.can(Permission(needed)):
            raise _refusal(principal, Permission(needed))

    app.before_request(check)


def trust_reverse_proxies(app: Flask, hops: int) -> None:
    """Believe X-Forwarded-For / -Proto from the `hops` reverse proxies in front of the app,
    so `request.remote_addr` (what login attempts are counted and logged by) is the client's
    address. With 0 the headers are ignored: a client could otherwise name any address."""
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
