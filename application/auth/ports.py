"""The ports the auth use cases need, and what a verified token tells about its holder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, Self

from domain.api_tokens import ApiToken, TokenScope, token_allows
from domain.users import Permission, Role, Session, User, role_allows

# an API token without expiry still needs a date where a principal's end is asked for (the
# remote verifier's cache caps its entries by it)
NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the holder of a valid session token or API token.

    For a session, `session_id` is the session's id and `token_id` / `scope` are None. For an
    API token, `token_id` is the token's id, `scope` narrows what the owner's role allows,
    `session_id` is "" and `session_expires_at` is when the token expires (NEVER if it
    does not)."""

    user_id: str
    email: str
    name: str
    role: Role
    session_id: str
    session_expires_at: datetime
    # signed in with a temporary password (an admin's reset): until it is changed, the
    # session may only change it, say who it is and log out
    password_change_due: bool = False
    token_id: str | None = None
    scope: TokenScope | None = None

    @property
    def via_api_token(self) -> bool:
        return self.token_id is not None

    def can(self, permission: Permission) -> bool:
        if self.scope is not None:
            return token_allows(self.role, self.scope, permission)
        return role_allows(self.role, permission)

    def can_as_role(self, permission: Permission) -> bool:
        """What the owner's role allows, whatever the token's scope."""
        return role_allows(self.role, permission)

    @classmethod
    def of(cls, user: User, session: Session) -> Principal:
        return cls(
            user.id,
            user.email,
            user.name,
            user.role,
            session.id,
            session.expires_at,
            password_change_due=user.must_change_password,
        )

    @classmethod
    def of_token(cls, user: User, token: ApiToken) -> Principal:
        return cls(
            user.id,
            user.email,
            user.name,
            user.role,
            session_id="",
            session_expires_at=token.expires_at or NEVER,
            token_id=token.id,
            scope=token.scope,
        )


class UserRepository(Protocol):
    def add(self, user: User) -> None: ...
    def update(self, user: User) -> None: ...
    def get(self, user_id: str) -> User | None: ...
    def get_by_email(self, email: str) -> User | None:
        """`email` is already normalized (see domain.users.normalize_email)."""
        ...

    def list(self, limit: int, after: tuple | None) -> list[User]:
        """Ordered by (email, id)."""
        ...

    def active_admin_ids(self, for_update: bool = False) -> set[str]:
        """Ids of enabled admins; `for_update` locks them until the transaction ends."""
        ...


class SessionRepository(Protocol):
    def add(self, session: Session) -> None: ...
    def update(self, session: Session) -> None: ...
    def get(self, session_id: str) -> Session | None: ...
    def get_with_user(self, token_hash: str) -> tuple[Session, User] | None:
        """The session with this token hash and its user, in one lookup (every request
        makes it); None when there is no such session."""
        ...

    def list_active(
        self, user_id: str, now: datetime, limit: int, after: tuple | None
    ) -> list[Session]:
        """The user's sessions still alive at `now`, newest first: ordered by (created_at
        ISO string, id) descending."""
        ...

    def remove(self, session_id: str) -> None: ...
    def remove_all_of(self, user_id: str, keep: str | None = None) -> int:
        """End every session of the user except `keep`; returns how many ended."""
        ...

    def remove_expired(self, now: datetime) -> int: ...


class ApiTokenRepository(Protocol):
    def add(self, token: ApiToken) -> None: ...
    def update(self, token: ApiToken) -> None:
        """Saves revoked_at (nothing else of a token is changed by its owner)."""
        ...

    def record_use(self, token_id: str, at: datetime) -> None:
        """Saves last_used_at alone, so a use racing a revocation cannot undo it."""
        ...

    def get(self, token_id: str) -> ApiToken | None: ...
    def get_with_user(self, token_hash: str) -> tuple[ApiToken, User] | None:
        """The token with this hash and its owner, in one lookup (every request with a token
        makes it); None when there is no such token."""
        ...

    def list_of(self, user_id: str, limit: int, after: tuple | None) -> list[ApiToken]:
        """The user's tokens not revoked (expired ones too), newest first: ordered by
        (created_at ISO string, id) descending."""
        ...


class AuthUnitOfWork(Protocol):
    """One transaction on the auth store. Leaving the `with` block without `commit()` rolls
    back."""

    users: UserRepository
    sessions: SessionRepository
    api_tokens: ApiTokenRepository

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def commit(self) -> None:
        """Make the changes durable. Refused (RuntimeError) in a read-only unit of work."""
        ...

    def rollback(self) -> None: ...


class AuthUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> AuthUnitOfWork:
        """A new unit of work; `read_only` as in application.ports.UnitOfWorkFactory."""
        ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches; False (never an error) for a hash that is garbled."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """The hash was made with weaker parameters than the current ones."""
        ...

    @property
    def dummy_hash(self) -> str:
        """A hash of no one's password: verifying against it costs what a real check costs,
        so a login for an unknown email takes as long as one with a wrong password."""
        ...


class TokenSigner(Protocol):
    def sign(self, secret: str) -> str:
        """The token a client carries: the session secret with a signature."""
        ...

    def unsign(self, token: str) -> str | None:
        """The secret in a token, or None for a token this service did not sign."""
        ...


class TokenVerifier(Protocol):
    """How the backend learns who holds a token: in-process (the Authenticate use case on
    the auth database) or remote (asking the auth service)."""

    def verify(self, token: str) -> Principal:
        """The token's holder; raises Unauthenticated for a token that is not (or no longer)
        valid, AuthServiceUnavailable when that cannot be found out."""
        ...
