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


class PasswordChangeRequired(Forbidden):
    """The caller signed in with a temporary password and must choose their own first."""

    code = "password_change_required"

    def __init__(self) -> None:
        super().__init__(
            "you signed in with a temporary password: choose your own first "
            "(POST /auth/password); until then this session can only do that, "
            "read /auth/session and log out"
        )


class NotWithApiToken(Forbidden):
    """The caller holds an API token, and this is for signed-in people only: their password,
    their tokens, other users."""

    code = "api_token_not_allowed"

    def __init__(self) -> None:
        super().__init__(
            "API tokens cannot manage accounts, passwords or tokens: sign in with your "
            "password to do this"
        )


class AuthServiceUnavailable(DomainError):
    """The remote auth service could not be asked whether a token is valid."""

    code = "auth_unavailable"
