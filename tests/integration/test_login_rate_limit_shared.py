"""The login rate limit counts in the auth store's database by default, so every process of an
instance shares one count (without it, each gunicorn worker allowed the limit on its own).
Two app instances with engines of their own stand for two processes: only the database is
shared between them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from adapters.persistence.auth_tables import rate_limit_hits
from adapters.persistence.engine import make_engine
from adapters.persistence.rate_limit_storage import SqlRateLimitStorage
from adapters.persistence.schema import (
    current_auth_revision,
    downgrade_auth_schema,
    upgrade_auth_schema,
    upgrade_schema,
)
from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_app, create_container

SECRET = "shared-limit-tests-secret-key-0123456789-abc"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lab.db'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def migrated_url(database_url: str) -> str:
    upgrade_schema(database_url)
    upgrade_auth_schema(database_url)
    return database_url


@pytest.fixture
def instances(migrated_url: str, tmp_path: Any) -> Iterator[list[Any]]:
    """Two app instances on one database, with a limit of 10 failed logins a minute."""
    containers, clients = [], []
    for name in ("one", "two"):
        container = create_container(
            Settings.from_env(
                {
                    "DEVICELAB_DATA_DIR": str(tmp_path / name),
                    "DEVICELAB_DATABASE_URL": migrated_url,
                    "DEVICELAB_SECRET_KEY": SECRET,
                    "DEVICELAB_LOGIN_RATE_LIMIT": "10/minute",
                }
            )
        )
        containers.append(container)
        clients.append(create_app(container).test_client())
    yield clients
    for container in containers:
        container.unwire()
        dispose_engines(container)


def _attempt(client, email="nobody@lab.example", ip="10.9.9.9"):
    return client.post(
        "/auth/login",
        json={"email": email, "password": "wrong-password"},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_two_instances_on_one_database_share_the_limit(instances, migrated_url):
    one, two = instances
    answers = [_attempt(one if n % 2 else two).status_code for n in range(10)]
    assert answers == [401] * 10
    blocked = _attempt(one)
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    assert _attempt(two).status_code == 429
    # counted in the database: one row per failed attempt and limit (address, account)
    engine = make_engine(migrated_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            count = connection.execute(sa.select(sa.func.count()).select_from(rate_limit_hits))
            assert count.scalar_one() == 20
    finally:
        engine.dispose()


def test_the_account_limit_holds_across_instances_and_addresses(instances):
    one, two = instances
    for n in range(10):
        client = one if n % 2 else two
        assert _attempt(client, "ada@lab.example", ip=f"10.0.0.{n}").status_code == 401
    assert _attempt(two, "ada@lab.example", ip="10.0.0.99").status_code == 429
    assert _attempt(one, "bob@lab.example", ip="10.0.1.1").status_code == 401  # another account


# -- the storage itself ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def storage(migrated_url: str) -> Iterator[tuple[SqlRateLimitStorage, Clock]]:
    engine = make_engine(migrated_url)
    clock = Clock()
    yield SqlRateLimitStorage(engine=engine, clock=clock), clock
    engine.dispose()


def test_a_moving_window_frees_places_as_its_oldest_hits_age_out(storage):
    store, clock = storage
    assert store.check()
    assert store.acquire_entry("k", limit=3, expiry=60)
    clock.now += 20
    assert store.acquire_entry("k", limit=3, expiry=60, amount=2)
    assert not store.acquire_entry("k", limit=3, expiry=60)
    assert store.get_moving_window("k", 3, 60) == (1_000_000.0, 3)
    assert store.acquire_entry("other", limit=3, expiry=60)  # keys count apart
    clock.now += 41  # the first hit is out of the window, the two later ones are not
    assert store.get_moving_window("k", 3, 60) == (1_000_020.0, 2)
    assert store.acquire_entry("k", limit=3, expiry=60)
    assert not store.acquire_entry("k", limit=3, expiry=60)
    assert not store.acquire_entry("k", limit=3, expiry=60, amount=4)


def test_a_fixed_window_counts_until_it_ends_and_old_rows_are_purged(storage, migrated_url):
    store, clock = storage
    assert store.incr("f", expiry=60) == 1
    clock.now += 30
    assert store.incr("f", expiry=60, amount=2) == 3
    assert store.get("f") == 3
    assert store.get_expiry("f") == 1_000_060.0
    clock.now += 31  # the window is over: a new one starts
    assert store.get("f") == 0
    assert store.incr("f", expiry=60) == 1
    assert store.get_expiry("f") == clock.now + 60
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(sa.func.count()).select_from(rate_limit_hits))
        assert rows.scalar_one() == 1  # the three of the old window were deleted
    store.clear("f")
    assert store.get("f") == 0
    store.incr("g", expiry=60)
    assert store.reset() == 1


def test_long_keys_are_stored_as_their_digest(storage):
    store, _ = storage
    key = "LIMITER/" + "x" * 400
    assert store.acquire_entry(key, limit=1, expiry=60)
    assert not store.acquire_entry(key, limit=1, expiry=60)
    assert not store.acquire_entry(key[:-1] + "x", limit=1, expiry=60)  # the same key
    assert store.acquire_entry(key[:-1] + "y", limit=1, expiry=60)


# -- the migration -----------------------------------------------------------------------------


def test_a0003_adds_the_counters_beside_existing_users_and_sessions(database_url: str):
    upgrade_auth_schema(database_url, "a0001")
    engine = make_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO users (id, email, name, role, password_hash, disabled, "
                    "created_at, updated_at) VALUES ('u1', 'ada@lab.example', 'Ada', 'admin', "
                    "'x', false, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO sessions (id, user_id, token_hash, created_at, last_used_at, "
                    "idle_expires_at, absolute_expires_at, user_agent) VALUES ('s1', 'u1', "
                    "'h', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00', "
                    "'2026-01-02 00:00:00+00:00', '2026-01-08 00:00:00+00:00', 'cli')"
                )
            )
        upgrade_auth_schema(database_url, "a0003")
        assert current_auth_revision(database_url) == "a0003"
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT email FROM users")).scalars().all() == [
                "ada@lab.example"
            ]
            assert connection.execute(sa.text("SELECT count(*) FROM sessions")).scalar() == 1
            assert connection.execute(sa.text("SELECT count(*) FROM rate_limit_hits")).scalar() == 0
        downgrade_auth_schema(database_url, "a0001")
        assert "rate_limit_hits" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
