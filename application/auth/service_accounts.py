"""Service accounts: users for pipelines, not people. An admin makes one with a role; it has
no password, cannot sign in, and acts only through the API tokens an admin makes for it
(`api_tokens.CreateApiToken` with its user id). Changing its role or disabling it is done as
for any user (`users.UpdateUser`), and reaches its tokens at once."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from application.auth.ports import AuthUnitOfWorkFactory as AuthUowFactory
from application.errors import AlreadyExists
from application.ports import Clock, IdGenerator
from domain.users import NO_PASSWORD, Role, User, normalize_email, parse_role, service_account_email

log = logging.getLogger("devicelab.auth")


@dataclass(frozen=True)
class CreateServiceAccountRequest:
    name: str  # e.g. ci-firmware
    role: Role | str
    email: str | None = None  # default: made from the name, <name>@service.invalid


class CreateServiceAccount:
    def __init__(self, uow: AuthUowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self, request: CreateServiceAccountRequest, by: str | None = None) -> User:
        role = parse_role(str(request.role))
        email = (
            normalize_email(request.email) if request.email else service_account_email(request.name)
        )
        now = self.clock.now()
        account = User(
            id=self.ids.new_id(),
            email=email,
            name=request.name,
            role=role,
            password_hash=NO_PASSWORD,
            created_at=now,
            updated_at=now,
            service_account=True,
        )
        with self.uow() as uow:
            if uow.users.get_by_email(email) is not None:
                raise AlreadyExists("user", "email", email)
            uow.users.add(account)
            uow.commit()
        log.info("service account %s (%s) made by %s", account.id, email, by or "the CLI")
        return account
