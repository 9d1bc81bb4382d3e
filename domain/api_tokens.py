"""API tokens: long-lived credentials for scripts and pipelines, narrowed to a scope.

A token acts for its owner (a person or a service account) but never beyond what the owner's
role allows *now*: its scope only narrows that role, and the role is looked up at every use,
so demoting or disabling the owner takes effect at once. A token ends when it expires (if it
has an expiry) or is revoked; nothing else renews it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.errors import InvalidTransition, InvalidValue
from domain.names import clean_name
from domain.users import Permission, Role, role_allows

TOKEN_NAME_MAX_LENGTH = 100

# last_used_at is written at most this often per token: a pipeline polling every second must
# not turn every read into a write. The value shown may so be up to this much behind.
LAST_USED_GRANULARITY = timedelta(seconds=60)


class TokenScope(StrEnum):
    READ = "read"  # see everything the owner may see
    RUN = "run"  # read, and start and cancel runs (and holds)
    FULL = "full"  # whatever the owner's role may do


SCOPE_PERMISSIONS: dict[TokenScope, frozenset[Permission]] = {
    TokenScope.READ: frozenset({Permission.READ}),
    TokenScope.RUN: frozenset({Permission.READ, Permission.RUN_TESTS}),
    TokenScope.FULL: frozenset(Permission),
}


def scope_allows(scope: TokenScope, permission: Permission) -> bool:
    return permission in SCOPE_PERMISSIONS[scope]


def token_allows(role: Role, scope: TokenScope, permission: Permission) -> bool:
    """What a token of `scope` may do for an owner of `role`: both must allow it."""
    return role_allows(role, permission) and scope_allows(scope, permission)


def parse_scope(value: str) -> TokenScope:
    try:
        return TokenScope(value)
    except ValueError:
        allowed = ", ".join(s.value for s in TokenScope)
        raise InvalidValue("scope", f"must be one of {allowed}") from None


@dataclass(frozen=True)
class TokenPolicy:
    """How long tokens may live: at most `max_days`, and without an expiry only when the
    admin allows it (`allow_no_expiry`)."""

    max_days: int = 90
    allow_no_expiry: bool = False

    def __post_init__(self) -> None:
        if self.max_days < 1:
            raise InvalidValue("token", "the maximum lifetime must be at least one day")

    def expiry(self, now: datetime, days: int | None) -> datetime | None:
        """When a token made at `now` to live `days` days (None: forever) expires."""
        if days is None:
            if not self.allow_no_expiry:
                raise InvalidValue(
                    "expires_in_days",
                    f"is required: tokens expire after at most {self.max_days} days on this "
                    "server (an admin can allow tokens without expiry)",
                )
            return None
        if days < 1 or days > self.max_days:
            raise InvalidValue("expires_in_days", f"must be between 1 and {self.max_days}")
        return now + timedelta(days=days)


@dataclass
class ApiToken:
    """A token's record. `token_hash` is a digest of the secret the holder sends; the secret
    itself is shown once, when the token is made, and never stored."""

    id: str
    user_id: str
    name: str
    scope: TokenScope
    token_hash: str
    created_at: datetime
    expires_at: datetime | None
    created_by: str  # the user id of whoever made it (the owner, or an admin for a service)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        self.name = clean_name(self.name, max_length=TOKEN_NAME_MAX_LENGTH)
        self.scope = TokenScope(self.scope)

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and not self.is_expired(now)

    def allows(self, role: Role, permission: Permission) -> bool:
        return token_allows(role, self.scope, permission)

    def record_use(self, now: datetime) -> bool:
        """Note a use; returns whether anything changed that needs saving (a use shortly after
        the last recorded one changes nothing, see LAST_USED_GRANULARITY)."""
        if not self.is_active(now):
            raise InvalidTransition("the token has expired or was revoked")
        if self.last_used_at is not None and now - self.last_used_at < LAST_USED_GRANULARITY:
            return False
        self.last_used_at = now
        return True

    def revoke(self, now: datetime) -> bool:
        """End the token; returns False when it was revoked already (revoking is idempotent)."""
        if self.revoked_at is not None:
            return False
        self.revoked_at = now
        return True
