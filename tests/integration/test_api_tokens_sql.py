"""API tokens and service accounts on SQLite and PostgreSQL: migration a0004 over a store with
users and sessions in it, and the token use cases on the SQL repositories."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.auth.passwords import cheap_password_hasher
from adapters.auth.tokens import SessionTokenSigner
from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.auth_unit_of_work import SqlAuthUnitOfWork
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import (
    current_auth_revision,
    downgrade_auth_schema,
    upgrade_auth_schema,
)
from application.auth.api_tokens import (
    AuthenticateApiToken,
    CreateApiToken,
    CreateApiTokenRequest,
    ListApiTokens,
    RevokeApiToken,
    VerifyBearerToken,
    api_token_digest,
)
from application.auth.errors import InvalidCredentials, Unauthenticated
from application.auth.service_accounts import CreateServiceAccount, CreateServiceAccountRequest
from application.auth.sessions import Authenticate, Login, LoginRequest
from application.auth.users import CreateUser, CreateUserRequest, UpdateUser, UserChanges
from domain.api_tokens import TokenPolicy, TokenScope
from domain.errors import InvalidTransition
from domain.users import Permission, SessionPolicy

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
PASSWORD = "correct horse battery"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'auth.db'}"
    return request.getfixturevalue("fresh_postgres_url")


def test_a0004_upgrades_a_store_with_users_and_sessions_in_it(fresh_url: str) -> None:
    upgrade_auth_schema(fresh_url, "a0003")
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO users (id, email, name, role, password_hash, disabled, "
                    "must_change_password, created_at, updated_at) VALUES ('u1', "
                    "'ada@lab.example', 'Ada', 'admin', '$argon2id$x', false, false, :t, :t)"
                ),
                {"t": T0},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO sessions (id, user_id, token_hash, created_at, last_used_at, "
                    "idle_expires_at, absolute_expires_at, user_agent, client_ip) VALUES "
                    "('s1', 'u1', :hash, :t, :t, :t, :t, 'Firefox', '10.0.0.1')"
                ),
                {"hash": "0" * 64, "t": T0},
            )
        upgrade_auth_schema(fresh_url, "a0004")
        assert current_auth_revision(fresh_url) == "a0004"
        factory = make_session_factory(engine)
        with SqlAuthUnitOfWork(factory) as uow:
            user = uow.users.get("u1")
            session = uow.sessions.get("s1")
            assert uow.api_tokens.list_of("u1", 10, None) == []
            assert uow.users.active_admin_ids() == {"u1"}
        assert user is not None and user.service_account is False and user.created_at == T0
        assert session is not None and session.user_agent == "Firefox"

        downgrade_auth_schema(fresh_url, "a0003")  # and back, keeping the rows
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT id FROM sessions")).scalars().all() == ["s1"]
            assert connection.execute(sa.text("SELECT id FROM users")).scalars().all() == ["u1"]
        assert "api_tokens" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


# -- the use cases on SQL ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def auth_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'auth.db'}"
        upgrade_auth_schema(url)
        return url
    return request.getfixturevalue("empty_auth_postgres_url")


class SqlTokens:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        factory = make_session_factory(engine)

        def uow(read_only: bool = False) -> SqlAuthUnitOfWork:
            return SqlAuthUnitOfWork(factory, read_only)

        self.clock = SettableClock(T0)
        ids = SequentialIds("x")
        hasher = cheap_password_hasher()
        signer = SessionTokenSigner("integration-secret-key-0123456789-abcdefgh")
        policy = SessionPolicy()
        self.create_user = CreateUser(uow, hasher, self.clock, ids)
        self.update_user = UpdateUser(uow, self.clock)
        self.login = Login(uow, hasher, signer, self.clock, ids, policy)
        self.service_account = CreateServiceAccount(uow, self.clock, ids)
        self.create = CreateApiToken(uow, self.clock, ids, TokenPolicy(90, allow_no_expiry=True))
        self.list = ListApiTokens(uow)
        self.revoke = RevokeApiToken(uow, self.clock)
        self.verify = VerifyBearerToken(
            Authenticate(uow, signer, self.clock, policy), AuthenticateApiToken(uow, self.clock)
        )

    def session(self, email: str, role: str):
        self.create_user(CreateUserRequest(email, email.split("@")[0], role, PASSWORD))
        return self.verify(self.login(LoginRequest(email, PASSWORD)).token)

    def rows(self, sql: str) -> list[Any]:
        with self.engine.connect() as connection:
            return connection.execute(sa.text(sql)).all()


@pytest.fixture
def tokens(auth_url: str) -> Iterator[SqlTokens]:
    engine = make_engine(auth_url)
    yield SqlTokens(engine)
    engine.dispose()


def test_a_token_round_trips_and_only_its_digest_is_stored(tokens: SqlTokens) -> None:
    ada = tokens.session("ada@lab.example", "engineer")
    created = tokens.create(ada, CreateApiTokenRequest("firmware CI", "run", 7))
    [(token_hash, scope)] = tokens.rows("SELECT token_hash, scope FROM api_tokens")
    assert token_hash == api_token_digest(created.secret) and scope == "run"
    assert created.secret not in str(tokens.rows("SELECT * FROM api_tokens"))
    [listed] = tokens.list(ada).items
    assert listed == created.token  # times keep their microseconds and zone
    assert listed.expires_at == T0 + timedelta(days=7)

    principal = tokens.verify(created.secret)
    assert (principal.token_id, principal.scope) == (created.token.id, TokenScope.RUN)
    assert principal.can(Permission.RUN_TESTS) and not principal.can(Permission.EDIT_CATALOG)


def test_no_expiry_last_use_revocation_and_demotion_on_sql(tokens: SqlTokens) -> None:
    tokens.session("root@lab.example", "admin")
    ada = tokens.session("ada@lab.example", "engineer")
    created = tokens.create(ada, CreateApiTokenRequest("forever", "full", None))
    tokens.verify(created.secret)
    tokens.clock.advance(30)
    tokens.verify(created.secret)
    assert tokens.list(ada).items[0].last_used_at == T0  # throttled: not written again
    tokens.clock.advance(60)
    tokens.verify(created.secret)
    assert tokens.list(ada).items[0].last_used_at == T0 + timedelta(seconds=90)
    assert tokens.list(ada).items[0].expires_at is None

    tokens.update_user(ada.user_id, UserChanges(role="viewer"))
    assert not tokens.verify(created.secret).can(Permission.RUN_TESTS)
    tokens.revoke(ada, created.token.id)
    with pytest.raises(Unauthenticated):
        tokens.verify(created.secret)
    assert tokens.list(ada).items == []
    [(revoked_at,)] = tokens.rows("SELECT revoked_at FROM api_tokens")
    assert revoked_at is not None


def test_service_accounts_on_sql(tokens: SqlTokens) -> None:
    root = tokens.session("root@lab.example", "admin")
    account = tokens.service_account(CreateServiceAccountRequest("ci-firmware", "admin"))
    [(flag, password_hash)] = tokens.rows(
        "SELECT service_account, password_hash FROM users WHERE email LIKE 'ci-%'"
    )
    assert bool(flag) is True and password_hash == "!"
    with pytest.raises(InvalidCredentials):
        tokens.login(LoginRequest(account.email, "!"))
    with pytest.raises(InvalidTransition):  # the service account is no admin that remains
        tokens.update_user(root.user_id, UserChanges(disabled=True))
    created = tokens.create(root, CreateApiTokenRequest("pipeline", "read", 30, account.id))
    assert tokens.verify(created.secret).user_id == account.id

    with tokens.engine.begin() as connection:  # the tokens go with their user
        connection.execute(sa.text("DELETE FROM users WHERE id = :id"), {"id": account.id})
    assert tokens.rows("SELECT id FROM api_tokens") == []
