"""Login rate limits shared through Redis (DEVICELAB_REDIS_URL): two app instances count the
same failed attempts. Needs Redis at DEVICELAB_TEST_REDIS_URL (default the local server);
skipped without one, except with CI=true, where that fails."""

from __future__ import annotations

import os
import uuid

import pytest
from dependency_injector import providers

from adapters.auth.passwords import cheap_password_hasher
from adapters.persistence.auth_in_memory import InMemoryAuthStore, InMemoryAuthUnitOfWork
from entrypoints.settings import Settings
from entrypoints.wsgi import create_app, create_container

REDIS_URL = os.environ.get("DEVICELAB_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        reason = f"Redis at {REDIS_URL} does not answer ({error})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    finally:
        client.close()
    return REDIS_URL


def _instance(tmp_path, redis_url: str, store: InMemoryAuthStore, name: str):
    container = create_container(
        Settings.from_env(
            {
                "DEVICELAB_DATA_DIR": str(tmp_path / name),
                "DEVICELAB_SECRET_KEY": "redis-tests-secret-key-0123456789-abcdefgh",
                "DEVICELAB_REDIS_URL": redis_url,
                "DEVICELAB_LOGIN_RATE_LIMIT": "4/minute",
            }
        )
    )
    container.auth_uow.override(providers.Factory(InMemoryAuthUnitOfWork, store))
    container.password_hasher.override(providers.Object(cheap_password_hasher()))
    app = create_app(container)
    return container, app.test_client()


def test_two_instances_share_the_failed_login_count(tmp_path, redis_url):
    store = InMemoryAuthStore()
    first, one = _instance(tmp_path, redis_url, store, "one")
    second, two = _instance(tmp_path, redis_url, store, "two")
    email = f"{uuid.uuid4().hex}@lab.example"  # keys of their own on a shared server
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    try:

        def attempt(client):
            return client.post(
                "/auth/login",
                json={"email": email, "password": "wrong-password"},
                environ_base={"REMOTE_ADDR": ip},
            )

        assert [attempt(c).status_code for c in (one, two, one, two)] == [401] * 4
        blocked = attempt(one)
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) > 0
        assert attempt(two).status_code == 429
    finally:
        first.unwire()
        second.unwire()


def test_an_unreachable_redis_does_not_break_logins(tmp_path):
    """Counting falls back to memory (and logs it); logins still work."""
    container, client = _instance(tmp_path, "redis://127.0.0.1:1/0", InMemoryAuthStore(), "nowhere")
    try:
        response = client.post("/auth/login", json={"email": "x@lab.example", "password": "x" * 9})
        assert response.status_code == 401
    finally:
        container.unwire()
