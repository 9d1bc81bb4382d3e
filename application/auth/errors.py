"""Errors of signing in and of being allowed to do something."""

from __future__ import annotations

from domain.errors import DomainError

INVALID_TOKEN = "the session token is missing, invalid or expired; sign in again"


class Unauthenticated(DomainError):
    """Who is calling cannot be established: no token, a bad one, or an ended session."""

    code = "unauthenticated"

    def __init__(self, message: str = INVALID_TOKEN) -> None:
        super().__init__(message)


class InvalidCredentials(Unauthenticated):
    """Login failed. One message whatever the reason, so nobody learns which emails exist."""

    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__("wrong email or password")


class Forbidden(DomainError):
    """The caller is known, but their role does not allow this."""

    code = "forbidden"


class AuthServiceUnavailable(DomainError):
    """The remote auth service could not be asked whether a token is valid."""

    code = "auth_unavailable"
