"""The auth store on SQLite and PostgreSQL: its own migration history beside the lab's, and the
auth use cases on the SQL repositories."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from adapters.auth.passwords import cheap_password_hasher
from adapters.auth.tokens import SessionTokenSigner
from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.auth_tables import VERSION_TABLE, auth_metadata
from adapters.persistence.auth_unit_of_work import SqlAuthUnitOfWork
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import (
    auth_head_revision,
    current_auth_revision,
    current_revision,
    downgrade_auth_schema,
    upgrade_auth_schema,
    upgrade_schema,
)
from application.auth.errors import InvalidCredentials, Unauthenticated
from application.auth.sessions import (
    Authenticate,
    EndOtherSessions,
    ListSessions,
    Login,
    LoginRequest,
    Logout,
    PurgeExpiredSessions,
    RevokeSession,
    token_digest,
)
from application.auth.users import (
    ChangePassword,
    ChangePasswordRequest,
    CreateUser,
    CreateUserRequest,
    ListUsers,
    ResetPassword,
    UpdateUser,
    UserChanges,
)
from application.errors import AlreadyExists, NotFound
from domain.errors import InvalidTransition, InvalidValue
from domain.users import Role, SessionPolicy, User

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
HOUR = 3600
PASSWORD = "correct horse battery"
AUTH_TABLES = set(auth_metadata.tables)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'auth.db'}"
    return request.getfixturevalue("fresh_postgres_url")


# -- migrations ----------------------------------------------------------------------------


def test_the_auth_history_goes_up_and_down_beside_the_lab_schema(fresh_url: str) -> None:
    upgrade_schema(fresh_url)
    lab_tables = _tables(fresh_url)
    assert current_auth_revision(fresh_url) is None

    upgrade_auth_schema(fresh_url)
    assert current_auth_revision(fresh_url) == auth_head_revision()
    assert current_revision(fresh_url) is not None  # the lab's history is its own
    assert _tables(fresh_url) == lab_tables | AUTH_TABLES | {VERSION_TABLE}

    downgrade_auth_schema(fresh_url, "base")
    assert current_auth_revision(fresh_url) is None
    assert _tables(fresh_url) - {VERSION_TABLE} == lab_tables  # the lab's tables untouched

    upgrade_auth_schema(fresh_url)
    assert current_auth_revision(fresh_url) == auth_head_revision()


def test_a0002_upgrades_a_store_with_users_and_sessions_in_it(fresh_url: str) -> None:
    upgrade_auth_schema(fresh_url, "a0001")
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO users (id, email, name, role, password_hash, disabled, "
                    "created_at, updated_at) VALUES ('u1', 'ada@lab.example', 'Ada', 'admin', "
                    "'$argon2id$x', false, :t, :t)"
                ),
                {"t": T0},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO sessions (id, user_id, token_hash, created_at, last_used_at, "
                    "idle_expires_at, absolute_expires_at, user_agent) VALUES "
                    "('s1', 'u1', :hash, :t, :t, :t, :t, 'Firefox')"
                ),
                {"hash": "0" * 64, "t": T0},
            )
        upgrade_auth_schema(fresh_url, "a0002")
        assert current_auth_revision(fresh_url) == "a0002"
        upgrade_auth_schema(fresh_url)  # the repositories read the latest schema
        factory = make_session_factory(engine)
        with SqlAuthUnitOfWork(factory) as uow:
            user = uow.users.get("u1")
            session = uow.sessions.get("s1")
        assert user is not None and user.must_change_password is False
        assert session is not None and (session.client_ip, session.user_agent) == ("", "Firefox")

        downgrade_auth_schema(fresh_url, "a0001")  # and back, keeping the rows
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT id FROM sessions")).scalars().all() == ["s1"]
    finally:
        engine.dispose()


def test_the_auth_schema_can_live_alone_in_its_own_database(fresh_url: str) -> None:
    upgrade_auth_schema(fresh_url)
    assert _tables(fresh_url) == AUTH_TABLES | {VERSION_TABLE}
    assert current_revision(fresh_url) is None


def test_the_migration_builds_what_auth_tables_describes(fresh_url: str) -> None:
    upgrade_schema(fresh_url)  # lab tables beside it must not count as differences
    upgrade_auth_schema(fresh_url)
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, type_, _: (
                        type_ != "table" or name in auth_metadata.tables
                    ),
                },
            )
            assert compare_metadata(context, auth_metadata) == []
    finally:
        engine.dispose()


# -- the use cases on SQL ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def auth_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'auth.db'}"
        upgrade_auth_schema(url)
        return url
    return request.getfixturevalue("empty_auth_postgres_url")


class SqlAuth:
    policy = SessionPolicy.from_seconds(12 * HOUR, 7 * 24 * HOUR)

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        factory = make_session_factory(engine)

        def uow(read_only: bool = False) -> SqlAuthUnitOfWork:
            return SqlAuthUnitOfWork(factory, read_only)

        self.clock = SettableClock(T0)
        self.signer = SessionTokenSigner("integration-secret-key-0123456789-abcdefgh")
        hasher, ids = cheap_password_hasher(), SequentialIds("u")
        self.login = Login(uow, hasher, self.signer, self.clock, ids, self.policy)
        self.authenticate = Authenticate(uow, self.signer, self.clock, self.policy)
        self.logout = Logout(uow)
        self.list_sessions = ListSessions(uow, self.clock)
        self.revoke = RevokeSession(uow)
        self.purge = PurgeExpiredSessions(uow, self.clock)
        self.create_user = CreateUser(uow, hasher, self.clock, ids)
        self.list_users = ListUsers(uow)
        self.update_user = UpdateUser(uow, self.clock)
        self.change_password = ChangePassword(uow, hasher, self.clock)
        self.reset_password = ResetPassword(uow, hasher, self.clock)
        self.end_other_sessions = EndOtherSessions(uow)

    def add(self, email: str, role: str = "engineer") -> User:
        return self.create_user(CreateUserRequest(email, email.split("@")[0], role, PASSWORD))

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        return self.login(
            LoginRequest(email, password, client_ip="2001:db8::7", user_agent="pytest/1.0")
        )

    def rows(self, sql: str) -> list[Any]:
        with self.engine.connect() as connection:
            return connection.execute(sa.text(sql)).all()


@pytest.fixture
def auth(auth_url: str) -> Iterator[SqlAuth]:
    engine = make_engine(auth_url)
    yield SqlAuth(engine)
    engine.dispose()


def test_users_round_trip_and_emails_are_unique(auth: SqlAuth) -> None:
    root = auth.add("Root@Lab.example", "admin")
    assert auth.list_users().items == [root]
    assert root.created_at == T0  # microseconds and the UTC zone survive the trip
    with pytest.raises(AlreadyExists):
        auth.add("root@LAB.example")


def test_a_racing_insert_of_the_same_email_is_already_exists(auth: SqlAuth) -> None:
    auth.add("ada@lab.example")
    factory = make_session_factory(auth.engine)
    with SqlAuthUnitOfWork(factory) as uow:
        twin = uow.users.get_by_email("ada@lab.example")
        assert twin is not None
        twin.id = "another-id"
        with pytest.raises(AlreadyExists):
            uow.users.add(twin)


def test_users_page_by_email(auth: SqlAuth) -> None:
    for name in ["dora", "carl", "bea", "abe"]:
        auth.add(f"{name}@lab.example", "viewer")
    first = auth.list_users(limit=3)
    assert [u.email.split("@")[0] for u in first.items] == ["abe", "bea", "carl"]
    rest = auth.list_users(limit=3, cursor=first.next_cursor)
    assert [u.email.split("@")[0] for u in rest.items] == ["dora"]


def test_a_session_row_keeps_only_the_digest_of_the_tokens_secret(auth: SqlAuth) -> None:
    auth.add("ada@lab.example")
    result = auth.sign_in("ada@lab.example")
    secret = auth.signer.unsign(result.token)
    assert secret is not None
    [(token_hash, user_agent)] = auth.rows("SELECT token_hash, user_agent FROM sessions")
    assert token_hash == token_digest(secret)
    assert secret not in token_hash and user_agent == "pytest/1.0"


def test_sessions_slide_expire_and_are_purged(auth: SqlAuth) -> None:
    auth.add("ada@lab.example")
    token = auth.sign_in("ada@lab.example").token
    auth.clock.advance(11 * HOUR)
    assert auth.authenticate(token).session_expires_at == auth.clock.now() + timedelta(hours=12)
    auth.clock.advance(11 * HOUR)
    auth.authenticate(token)  # 22 h after login: alive, because it was used at 11 h
    auth.clock.advance(12 * HOUR)
    with pytest.raises(Unauthenticated):
        auth.authenticate(token)
    assert auth.rows("SELECT id FROM sessions") == []

    auth.sign_in("ada@lab.example")
    auth.clock.advance(7 * 24 * HOUR)
    assert auth.purge() == 1


def test_logout_revoke_and_listing(auth: SqlAuth) -> None:
    ada = auth.add("ada@lab.example")
    auth.add("bob@lab.example")
    first = auth.sign_in("ada@lab.example")
    auth.clock.advance(1)
    second = auth.sign_in("ada@lab.example")
    bob = auth.sign_in("bob@lab.example")

    page = auth.list_sessions(ada.id, limit=1)
    assert [s.id for s in page.items] == [second.session.id]
    rest = auth.list_sessions(ada.id, limit=1, cursor=page.next_cursor)
    assert [s.id for s in rest.items] == [first.session.id]

    with pytest.raises(NotFound):
        auth.revoke(ada.id, bob.session.id)
    auth.revoke(ada.id, second.session.id)
    with pytest.raises(Unauthenticated):
        auth.authenticate(second.token)
    auth.logout(first.session.id)
    with pytest.raises(Unauthenticated):
        auth.authenticate(first.token)
    assert auth.authenticate(bob.token).email == "bob@lab.example"


def test_a_forged_cursor_is_a_clear_error(auth: SqlAuth) -> None:
    from application.pagination import encode_cursor

    for key in [("yesterday", "x"), ("2026-03-01T08:00:00", "x")]:  # garbage; naive time
        with pytest.raises(InvalidValue):
            auth.list_sessions("u-1", cursor=encode_cursor("sessions", key))


def test_password_change_and_disabling_end_sessions(auth: SqlAuth) -> None:
    auth.add("root@lab.example", "admin")
    ada = auth.add("ada@lab.example")
    here, there = auth.sign_in("ada@lab.example"), auth.sign_in("ada@lab.example")
    principal = auth.authenticate(here.token)
    assert auth.change_password(principal, ChangePasswordRequest(PASSWORD, "new passphrase")) == 1
    with pytest.raises(Unauthenticated):
        auth.authenticate(there.token)
    with pytest.raises(InvalidCredentials):
        auth.sign_in("ada@lab.example")

    auth.update_user(ada.id, UserChanges(disabled=True, role="viewer"))
    with pytest.raises(Unauthenticated):
        auth.authenticate(here.token)
    assert auth.rows("SELECT id FROM sessions") == []
    with pytest.raises(InvalidCredentials):
        auth.sign_in("ada@lab.example", "new passphrase")


def test_a_reset_password_is_kept_temporary_until_changed(auth: SqlAuth) -> None:
    root = auth.add("root@lab.example", "admin")
    ada = auth.add("ada@lab.example")
    old = auth.sign_in("ada@lab.example")
    reset = auth.reset_password(ada.id, by=root.id)
    assert reset.sessions_ended == 1
    with pytest.raises(Unauthenticated):
        auth.authenticate(old.token)
    [(must_change,)] = auth.rows(f"SELECT must_change_password FROM users WHERE id = '{ada.id}'")
    assert bool(must_change) is True

    signed_in = auth.sign_in("ada@lab.example", reset.temporary_password)
    principal = auth.authenticate(signed_in.token)
    assert principal.password_change_due is True
    auth.change_password(principal, ChangePasswordRequest(reset.temporary_password, "mine now!"))
    assert auth.authenticate(signed_in.token).password_change_due is False


def test_sessions_keep_their_address_and_the_others_can_be_ended(auth: SqlAuth) -> None:
    auth.add("ada@lab.example")
    here, there = auth.sign_in("ada@lab.example"), auth.sign_in("ada@lab.example")
    listed = auth.list_sessions(here.user.id).items
    assert {s.client_ip for s in listed} == {"2001:db8::7"}
    assert auth.end_other_sessions(auth.authenticate(here.token)) == 1
    with pytest.raises(Unauthenticated):
        auth.authenticate(there.token)
    assert auth.authenticate(here.token).session_id == here.session.id


def test_the_last_admin_stays(auth: SqlAuth) -> None:
    root = auth.add("root@lab.example", "admin")
    with pytest.raises(InvalidTransition):
        auth.update_user(root.id, UserChanges(disabled=True))
    [(disabled, role)] = auth.rows("SELECT disabled, role FROM users")
    assert (bool(disabled), role) == (False, Role.ADMIN.value)


def test_deleting_a_user_row_takes_their_sessions_along(auth: SqlAuth) -> None:
    auth.add("ada@lab.example")
    auth.sign_in("ada@lab.example")
    with auth.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM users"))
    assert auth.rows("SELECT id FROM sessions") == []


def test_autogenerate_of_either_history_ignores_the_others_tables(fresh_url: str) -> None:
    """`alembic check` goes through each env.py: neither may propose dropping the other's."""
    from alembic import command

    from adapters.persistence.schema import alembic_config, auth_alembic_config

    upgrade_schema(fresh_url)
    upgrade_auth_schema(fresh_url)
    command.check(alembic_config(fresh_url))
    command.check(auth_alembic_config(fresh_url))
