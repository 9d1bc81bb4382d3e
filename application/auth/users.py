"""Use cases for user accounts: create, list, change (role, name, disabled) and passwords."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from application.auth.errors import Unauthenticated
from application.auth.ports import AuthUnitOfWork, PasswordHasher, Principal
from application.auth.ports import AuthUnitOfWorkFactory as AuthUowFactory
from application.errors import AlreadyExists, NotFound
from application.pagination import Page, paginate
from application.ports import Clock, IdGenerator
from domain.errors import InvalidValue
from domain.users import (
    PASSWORD_MAX_LENGTH,
    Role,
    User,
    check_password_policy,
    ensure_an_admin_remains,
    normalize_email,
    parse_role,
)

log = logging.getLogger("devicelab.auth")

TEMPORARY_PASSWORD_BYTES = 12  # 96 random bits, 16 characters


def user_key(user: User) -> tuple:
    return (user.email, user.id)


def _load(uow: AuthUnitOfWork, user_id: str) -> User:
    user = uow.users.get(user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


@dataclass(frozen=True)
class CreateUserRequest:
    email: str
    name: str
    role: Role | str
    password: str


class CreateUser:
    def __init__(
        self, uow: AuthUowFactory, hasher: PasswordHasher, clock: Clock, ids: IdGenerator
    ) -> None:
        self.uow, self.hasher, self.clock, self.ids = uow, hasher, clock, ids

    def __call__(self, request: CreateUserRequest) -> User:
        check_password_policy(request.password)
        role = parse_role(str(request.role))
        email = normalize_email(request.email)
        with self.uow() as uow:  # fail fast, before the slow hash
            if uow.users.get_by_email(email) is not None:
                raise AlreadyExists("user", "email", email)
        password_hash = self.hasher.hash(request.password)
        now = self.clock.now()
        user = User(
            id=self.ids.new_id(),
            email=email,
            name=request.name,
            role=role,
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
        )
        with self.uow() as uow:
            if uow.users.get_by_email(email) is not None:
                raise AlreadyExists("user", "email", email)
            uow.users.add(user)
            uow.commit()
        return user


class ListUsers:
    """All users, ordered by email."""

    def __init__(self, uow: AuthUowFactory) -> None:
        self.uow = uow

    def __call__(self, limit: int | None = None, cursor: str | None = None) -> Page[User]:
        with self.uow() as uow:
            return paginate("users", uow.users.list, user_key, limit, cursor)


class GetUser:
    def __init__(self, uow: AuthUowFactory) -> None:
        self.uow = uow

    def __call__(self, user_id: str) -> User:
        with self.uow() as uow:
            return _load(uow, user_id)


@dataclass(frozen=True)
class UserChanges:
    name: str | None = None
    role: Role | str | None = None
    disabled: bool | None = None


class UpdateUser:
    """Rename a user, change their role, disable or re-enable them. Disabling ends all their
    sessions at once. The last enabled admin can be neither demoted nor disabled."""

    def __init__(self, uow: AuthUowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(self, user_id: str, changes: UserChanges) -> User:
        role = parse_role(str(changes.role)) if changes.role is not None else None
        now = self.clock.now()
        with self.uow() as uow:
            user = _load(uow, user_id)
            admins_before = uow.users.active_admin_ids(for_update=True)
            if changes.name is not None and changes.name.strip() != user.name:
                user.rename(changes.name, now)
            if role is not None and role is not user.role:
                user.change_role(role, now)
            if changes.disabled is True and not user.disabled:
                user.disable(now)
            elif changes.disabled is False and user.disabled:
                user.enable(now)
            ensure_an_admin_remains(admins_before, user)
            uow.users.update(user)
            if user.disabled:
                uow.sessions.remove_all_of(user.id)
            uow.commit()
        return user


@dataclass(frozen=True)
class ChangePasswordRequest:
    current_password: str
    new_password: str


class ChangePassword:
    """Change one's own password; needs the current one. Every other session of the user
    ends (whoever else held one must sign in with the new password); this one stays."""

    def __init__(self, uow: AuthUowFactory, hasher: PasswordHasher, clock: Clock) -> None:
        self.uow, self.hasher, self.clock = uow, hasher, clock

    def __call__(self, principal: Principal, request: ChangePasswordRequest) -> int:
        """Returns how many other sessions ended."""
        check_password_policy(request.new_password, "new_password")
        if request.new_password == request.current_password:
            raise InvalidValue("new_password", "must differ from the current password")
        with self.uow() as uow:
            user = uow.users.get(principal.user_id)
        if user is None:
            raise Unauthenticated()
        if len(request.current_password) > PASSWORD_MAX_LENGTH or not self.hasher.verify(
            user.password_hash, request.current_password
        ):
            raise InvalidValue("current_password", "is not your current password")
        new_hash = self.hasher.hash(request.new_password)
        now = self.clock.now()
        with self.uow() as uow:
            user = uow.users.get(principal.user_id)
            if user is None:
                raise Unauthenticated()
            user.change_password(new_hash, now)
            uow.users.update(user)
            ended = uow.sessions.remove_all_of(user.id, keep=principal.session_id)
            uow.commit()
        return ended


@dataclass(frozen=True)
class PasswordReset:
    user: User
    temporary_password: str  # shown once to whoever reset it, stored nowhere in clear
    sessions_ended: int


class ResetPassword:
    """An admin's reset of someone's forgotten password: a random temporary password, which
    the user must replace at their next sign-in (until then their session can do nothing
    else). Every session of the user ends, so whoever held one is out."""

    def __init__(self, uow: AuthUowFactory, hasher: PasswordHasher, clock: Clock) -> None:
        self.uow, self.hasher, self.clock = uow, hasher, clock

    def __call__(self, user_id: str, by: str | None = None) -> PasswordReset:
        """`by` is the resetting admin's user id (None from the command line)."""
        with self.uow() as uow:  # fail fast, before the slow hash
            _load(uow, user_id)
        temporary = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
        temporary_hash = self.hasher.hash(temporary)
        now = self.clock.now()
        with self.uow() as uow:
            user = _load(uow, user_id)
            user.reset_password(temporary_hash, now, by)
            uow.users.update(user)
            ended = uow.sessions.remove_all_of(user.id)
            uow.commit()
        log.warning(
            "password of user %s reset by %s; %d sessions ended", user.id, by or "the CLI", ended
        )
        return PasswordReset(user, temporary, ended)


class FindUserByEmail:
    """The user with this email (for the command line, which names users by email)."""

    def __init__(self, uow: AuthUowFactory) -> None:
        self.uow = uow

    def __call__(self, email: str) -> User:
        email = normalize_email(email)
        with self.uow() as uow:
            user = uow.users.get_by_email(email)
        if user is None:
            raise NotFound("user", email)
        return user
