"""Users, what their role allows, and the sessions they sign in with.

A session is alive while it is used: every use pushes its idle deadline forward (sliding),
but never past its absolute lifetime, which is fixed when it opens. Both rules live here, so
every adapter that stores sessions expires them the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.errors import InvalidTransition, InvalidValue
from domain.names import clean_name

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 200
USER_AGENT_MAX_LENGTH = 300
CLIENT_IP_MAX_LENGTH = 64  # an IPv6 address with a zone index fits

# A session's idle deadline is pushed forward at most this often (or a tenth of the idle
# timeout, if that is shorter): one write per session a minute instead of one per request.
# The idle timeout may so end up to this much early.
RENEWAL_GRANULARITY = timedelta(seconds=60)


class Role(StrEnum):
    ADMIN = "admin"
    ENGINEER = "engineer"
    VIEWER = "viewer"


class Permission(StrEnum):
    READ = "read"  # see devices, test cases, environments, runs and results
    MANAGE_USERS = "users:manage"  # create users, change their role, disable them
    MANAGE_DEVICES = "devices:manage"  # register, edit and remove devices
    OPERATE_DEVICES = "devices:operate"  # override a device's status, record heartbeats
    EDIT_CATALOG = "catalog:edit"  # create, edit and delete test cases and environments
    RUN_TESTS = "runs:operate"  # start and cancel test runs
    # decide what a test case executes on a runner host (its executor and command): whoever
    # holds it can run programs there, so only admins do
    DEFINE_EXECUTION = "executions:define"
    # end or extend anyone's hold, not only one's own
    MANAGE_HOLDS = "holds:manage"
    # designate the health checks the worker runs on the devices by itself
    MANAGE_HEALTH = "health:manage"
    # drain a runner (it takes no new job) and bring it back
    MANAGE_RUNNERS = "runners:manage"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ENGINEER: frozenset(
        {
            Permission.READ,
            Permission.OPERATE_DEVICES,
            Permission.EDIT_CATALOG,
            Permission.RUN_TESTS,
        }
    ),
    Role.VIEWER: frozenset({Permission.READ}),
}


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def roles_with(permission: Permission) -> list[Role]:
    return [role for role in Role if role_allows(role, permission)]


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidValue("role", f"must be one of {allowed}") from None


def normalize_email(raw: str) -> str:
    """The form an email is stored and looked up in: trimmed and lower-cased, so that
    `Ada@Lab.example` and `ada@lab.example` are one account."""
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    if not email:
        raise InvalidValue("email", "must not be empty")
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidValue("email", f"must be at most {EMAIL_MAX_LENGTH} characters")
    if not at or not local or not domain or "@" in domain or any(c.isspace() for c in email):
        raise InvalidValue("email", "is not an email address")
    return email


SERVICE_ACCOUNT_DOMAIN = "service.invalid"  # .invalid is reserved: no mail goes there
SERVICE_ACCOUNT_HAS_NO_PASSWORD = (
    "a service account has no password and cannot sign in: it uses API tokens"
)
# stored as a service account's password hash: no password verifies against it
NO_PASSWORD = "!"
_SERVICE_ACCOUNT_LOCAL_PART = re.compile(r"[a-z0-9][a-z0-9._-]*")


def service_account_email(name: str) -> str:
    """The address a service account is known by when the admin gives none, made from its
    name (`ci-firmware` -> `ci-firmware@service.invalid`)."""
    local = name.strip().lower()
    if not _SERVICE_ACCOUNT_LOCAL_PART.fullmatch(local) or len(local) > 64:
        raise InvalidValue(
            "email",
            "give one, or a name of letters, digits, '.', '-' and '_' to make it from",
        )
    return f"{local}@{SERVICE_ACCOUNT_DOMAIN}"


def check_password_policy(password: str, field: str = "password") -> None:
    """8 to 128 characters, any characters, no composition rules (NIST SP 800-63B). The
    whole password counts: nothing is truncated."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidValue(field, f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidValue(field, f"must be at most {PASSWORD_MAX_LENGTH} characters")


def _clean_name(name: str) -> str:
    # display names follow the rules of every name (domain/names.py), but need not be unique
    return clean_name(name, max_length=NAME_MAX_LENGTH)


@dataclass
class User:
    id: str
    email: str
    name: str
    role: Role
    password_hash: str
    created_at: datetime
    updated_at: datetime
    disabled: bool = False
    # set by an admin's reset: the password is a temporary one, and until the user picks their
    # own, their sessions may do nothing but change it (see Principal.password_change_due)
    must_change_password: bool = False
    # a pipeline's identity, not a person's: it has no password, cannot sign in and acts only
    # through the API tokens an admin makes for it
    service_account: bool = False

    def __post_init__(self) -> None:
        self.email = normalize_email(self.email)
        self.name = _clean_name(self.name)
        self.role = Role(self.role)

    def can(self, permission: Permission) -> bool:
        return not self.disabled and role_allows(self.role, permission)

    def rename(self, name: str, now: datetime) -> None:
        self.name = _clean_name(name)
        self.updated_at = now

    def change_role(self, role: Role, now: datetime) -> None:
        self.role = role
        self.updated_at = now

    def disable(self, now: datetime) -> None:
        self.disabled = True
        self.updated_at = now

    def enable(self, now: datetime) -> None:
        self.disabled = False
        self.updated_at = now

    def replace_password_hash(self, password_hash: str, now: datetime) -> None:
        """The same password, hashed anew (e.g. with stronger parameters)."""
        self.password_hash = password_hash
        self.updated_at = now

    def change_password(self, password_hash: str, now: datetime) -> None:
        """The user chose a new password: a temporary one is no longer in force."""
        self.password_hash = password_hash
        self.must_change_password = False
        self.updated_at = now

    def reset_password(self, temporary_password_hash: str, now: datetime, by: str | None) -> None:
        """An admin (`by`, a user id; None for the command line) gave the user a temporary
        password, which the user must replace at their next sign-in. One's own password is
        changed, not reset: resetting it would lock oneself into the change screen."""
        if by == self.id:
            raise InvalidTransition(
                "you cannot reset your own password; change it on your account page"
            )
        if self.service_account:
            raise InvalidTransition(SERVICE_ACCOUNT_HAS_NO_PASSWORD)
        self.password_hash = temporary_password_hash
        self.must_change_password = True
        self.updated_at = now

    @property
    def is_active_admin(self) -> bool:
        """An admin who can manage users: enabled and a person (a service account's tokens
        may not manage users, so it cannot be the admin that remains)."""
        return self.role is Role.ADMIN and not self.disabled and not self.service_account


def ensure_an_admin_remains(active_admin_ids_before: set[str], changed: User) -> None:
    """Refuse a change that would leave the lab without an enabled admin: nobody could
    manage users any more."""
    others = active_admin_ids_before - {changed.id}
    if not others and not changed.is_active_admin:
        raise InvalidTransition("at least one enabled admin must remain")


@dataclass(frozen=True)
class SessionPolicy:
    idle_timeout: timedelta = timedelta(hours=12)
    lifetime: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.idle_timeout <= timedelta(0) or self.lifetime <= timedelta(0):
            raise InvalidValue("session", "idle timeout and lifetime must be positive")

    @classmethod
    def from_seconds(cls, idle_s: float, lifetime_s: float) -> SessionPolicy:
        return cls(timedelta(seconds=idle_s), timedelta(seconds=lifetime_s))


@dataclass
class Session:
    """A signed-in user. `token_hash` is a digest of the secret in the user's token; the
    secret itself is never stored."""

    id: str
    user_id: str
    token_hash: str
    created_at: datetime
    last_used_at: datetime
    idle_expires_at: datetime
    absolute_expires_at: datetime
    user_agent: str = ""
    client_ip: str = ""  # where the session was opened from, as the server saw it

    @classmethod
    def open(
        cls,
        id: str,
        user_id: str,
        token_hash: str,
        now: datetime,
        policy: SessionPolicy,
        user_agent: str = "",
        client_ip: str = "",
    ) -> Session:
        absolute = now + policy.lifetime
        return cls(
            id=id,
            user_id=user_id,
            token_hash=token_hash,
            created_at=now,
            last_used_at=now,
            idle_expires_at=min(now + policy.idle_timeout, absolute),
            absolute_expires_at=absolute,
            user_agent=user_agent[:USER_AGENT_MAX_LENGTH],
            client_ip=client_ip[:CLIENT_IP_MAX_LENGTH],
        )

    @property
    def expires_at(self) -> datetime:
        """When the session ends if it is not used again."""
        return min(self.idle_expires_at, self.absolute_expires_at)

    def is_active(self, now: datetime) -> bool:
        return now < self.expires_at

    def touch(self, now: datetime, policy: SessionPolicy) -> bool:
        """Record a use: slides the idle deadline (capped by the absolute lifetime). Returns
        whether anything changed that needs saving; uses shortly after the last recorded one
        (see RENEWAL_GRANULARITY) change nothing."""
        if not self.is_active(now):
            raise InvalidTransition("the session has expired")
        if now - self.last_used_at < min(RENEWAL_GRANULARITY, policy.idle_timeout / 10):
            return False
        self.last_used_at = now
        self.idle_expires_at = min(now + policy.idle_timeout, self.absolute_expires_at)
        return True
