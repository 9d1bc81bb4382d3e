"""SQL repositories of the auth store: the ports of `application.auth.ports` on SQLAlchemy
Core. Rows are mapped to entities by hand; nothing here commits."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from adapters.persistence import auth_tables as t
from application.errors import AlreadyExists
from domain.api_tokens import ApiToken, TokenScope
from domain.errors import InvalidValue
from domain.users import Role, Session, User


def _user(row: Any) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        password_hash=row.password_hash,
        disabled=row.disabled,
        must_change_password=row.must_change_password,
        service_account=row.service_account,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _user_row(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role.value,
        "password_hash": user.password_hash,
        "disabled": user.disabled,
        "must_change_password": user.must_change_password,
        "service_account": user.service_account,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def _session(row: Any) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        token_hash=row.token_hash,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        idle_expires_at=row.idle_expires_at,
        absolute_expires_at=row.absolute_expires_at,
        user_agent=row.user_agent,
        client_ip=row.client_ip,
    )


def _session_row(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "user_id": session.user_id,
        "token_hash": session.token_hash,
        "created_at": session.created_at,
        "last_used_at": session.last_used_at,
        "idle_expires_at": session.idle_expires_at,
        "absolute_expires_at": session.absolute_expires_at,
        "user_agent": session.user_agent,
        "client_ip": session.client_ip,
    }


def _cursor_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
        # in UTC, as stored; a made-up offset can push it past year 9999 (OverflowError)
        moment = moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise InvalidValue("cursor", "is not a cursor this API issued for this list")
    return moment


def _expired(now: datetime) -> sa.ColumnElement[bool]:
    s = t.sessions.c
    return sa.or_(s.idle_expires_at <= now, s.absolute_expires_at <= now)


def _with_owner(table: sa.Table) -> sa.Select:
    """Rows of `table` by token hash, with their user's columns as owner_*: every API
    request runs one of these, built once, not per call."""
    return (
        sa.select(table, *(c.label(f"owner_{c.name}") for c in t.users.c))
        .join(t.users, t.users.c.id == table.c.user_id)
        .where(table.c.token_hash == sa.bindparam("token_hash"))
    )


def _owner(row: Any) -> User:
    values = row._mapping
    return _user(SimpleNamespace(**{c.name: values[f"owner_{c.name}"] for c in t.users.c}))


_SESSION_WITH_USER = _with_owner(t.sessions)
_API_TOKEN_WITH_USER = _with_owner(t.api_tokens)


def _newest_first(table: sa.Table, query: sa.Select, after: tuple | None) -> sa.Select:
    """Keyset pagination by (created_at, id) descending."""
    c = table.c
    query = query.order_by(c.created_at.desc(), c.id.desc())
    if after is not None:
        created, last_id = _cursor_time(after[0]), after[1]
        query = query.where(
            sa.or_(c.created_at < created, sa.and_(c.created_at == created, c.id < last_id))
        )
    return query


class SqlUserRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def add(self, user: User) -> None:
        try:
            self.db.execute(t.users.insert().values(_user_row(user)))
        except IntegrityError:
            # the email was taken between the use case's check and this insert
            raise AlreadyExists("user", "email", user.email) from None

    def update(self, user: User) -> None:
        values = _user_row(user)
        del values["id"], values["created_at"]
        self.db.execute(t.users.update().where(t.users.c.id == user.id).values(values))

    def get(self, user_id: str) -> User | None:
        row = self.db.execute(sa.select(t.users).where(t.users.c.id == user_id)).first()
        return _user(row) if row else None

    def get_by_email(self, email: str) -> User | None:
        row = self.db.execute(sa.select(t.users).where(t.users.c.email == email)).first()
        return _user(row) if row else None

    def list(self, limit: int, after: tuple | None) -> list[User]:
        c = t.users.c
        query = sa.select(t.users).order_by(c.email, c.id).limit(limit)
        if after is not None:
            query = query.where(sa.tuple_(c.email, c.id) > sa.tuple_(*after))
        return [_user(row) for row in self.db.execute(query)]

    def active_admin_ids(self, for_update: bool = False) -> set[str]:
        c = t.users.c
        query = sa.select(c.id).where(
            c.role == Role.ADMIN.value, c.disabled.is_(False), c.service_account.is_(False)
        )
        if for_update:
            query = query.with_for_update()
        return set(self.db.execute(query).scalars())


class SqlSessionRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def add(self, session: Session) -> None:
        self.db.execute(t.sessions.insert().values(_session_row(session)))

    def update(self, session: Session) -> None:
        s = t.sessions.c
        self.db.execute(
            t.sessions.update()
            .where(s.id == session.id)
            .values(
                last_used_at=session.last_used_at,
                idle_expires_at=session.idle_expires_at,
                absolute_expires_at=session.absolute_expires_at,
            )
        )

    def get(self, session_id: str) -> Session | None:
        row = self.db.execute(sa.select(t.sessions).where(t.sessions.c.id == session_id)).first()
        return _session(row) if row else None

    def get_with_user(self, token_hash: str) -> tuple[Session, User] | None:
        row = self.db.execute(_SESSION_WITH_USER, {"token_hash": token_hash}).first()
        return (_session(row), _owner(row)) if row is not None else None

    def list_active(
        self, user_id: str, now: datetime, limit: int, after: tuple | None
    ) -> list[Session]:
        s = t.sessions.c
        query = sa.select(t.sessions).where(s.user_id == user_id, sa.not_(_expired(now)))
        query = _newest_first(t.sessions, query, after).limit(limit)
        return [_session(row) for row in self.db.execute(query)]

    def remove(self, session_id: str) -> None:
        self.db.execute(t.sessions.delete().where(t.sessions.c.id == session_id))

    def remove_all_of(self, user_id: str, keep: str | None = None) -> int:
        s = t.sessions.c
        query = t.sessions.delete().where(s.user_id == user_id)
        if keep is not None:
            query = query.where(s.id != keep)
        return self.db.execute(query).rowcount

    def remove_expired(self, now: datetime) -> int:
        return self.db.execute(t.sessions.delete().where(_expired(now))).rowcount


def _api_token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        scope=TokenScope(row.scope),
        token_hash=row.token_hash,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class SqlApiTokenRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def add(self, token: ApiToken) -> None:
        self.db.execute(
            t.api_tokens.insert().values(
                id=token.id,
                user_id=token.user_id,
                name=token.name,
                scope=token.scope.value,
                token_hash=token.token_hash,
                created_at=token.created_at,
                created_by=token.created_by,
                expires_at=token.expires_at,
                last_used_at=token.last_used_at,
                revoked_at=token.revoked_at,
            )
        )

    def update(self, token: ApiToken) -> None:
        c = t.api_tokens.c
        self.db.execute(
            t.api_tokens.update().where(c.id == token.id).values(revoked_at=token.revoked_at)
        )

    def record_use(self, token_id: str, at: datetime) -> None:
        c = t.api_tokens.c
        self.db.execute(t.api_tokens.update().where(c.id == token_id).values(last_used_at=at))

    def get(self, token_id: str) -> ApiToken | None:
        c = t.api_tokens.c
        row = self.db.execute(sa.select(t.api_tokens).where(c.id == token_id)).first()
        return _api_token(row) if row else None

    def get_with_user(self, token_hash: str) -> tuple[ApiToken, User] | None:
        row = self.db.execute(_API_TOKEN_WITH_USER, {"token_hash": token_hash}).first()
        return (_api_token(row), _owner(row)) if row is not None else None

    def list_of(self, user_id: str, limit: int, after: tuple | None) -> list[ApiToken]:
        c = t.api_tokens.c
        query = sa.select(t.api_tokens).where(c.user_id == user_id, c.revoked_at.is_(None))
        query = _newest_first(t.api_tokens, query, after).limit(limit)
        return [_api_token(row) for row in self.db.execute(query)]
