"""The single seam where request authentication plugs in.

Every /api request passes through `authenticate_request`, which asks the configured
`RequestAuthenticator` who is calling. The auth service replaces the open authenticator
below with token verification; views only ever read `current_actor()`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flask import Request, g, request

PUBLIC_ENDPOINT_ATTRIBUTE = "_devicelab_public"


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    role: str


class RequestAuthenticator(Protocol):
    def authenticate(self, request: Request) -> Principal:
        """Return who is calling, or raise an HTTP 401/403 error."""
        ...


class OpenAccess:
    """No authentication: everybody is the lab. Used until the auth service is configured."""

    def authenticate(self, request: Request) -> Principal:
        return Principal(id="anonymous", name="anonymous", role="admin")


def public(view):
    """Mark a view as reachable without authentication (health, readiness)."""
    setattr(view, PUBLIC_ENDPOINT_ATTRIBUTE, True)
    return view


def authenticate_request(authenticator: RequestAuthenticator) -> None:
    g.principal = authenticator.authenticate(request)


def current_actor() -> str:
    principal = getattr(g, "principal", None)
    return principal.name if principal else "anonymous"


def install_authentication(app, authenticator: RequestAuthenticator, prefix: str = "/api") -> None:
    """Authenticate every request under `prefix` except views marked public and the docs."""
    docs_prefixes = (f"{prefix}/docs", f"{prefix}/openapi.json")

    def check() -> None:
        if not request.path.startswith(prefix + "/") and request.path != prefix:
            return
        if request.path.startswith(docs_prefixes):
            return
        view = app.view_functions.get(request.endpoint or "")
        view_class = getattr(view, "view_class", None)
        if getattr(view, PUBLIC_ENDPOINT_ATTRIBUTE, False) or getattr(
            view_class, PUBLIC_ENDPOINT_ATTRIBUTE, False
        ):
            return
        authenticate_request(authenticator)

    app.before_request(check)
