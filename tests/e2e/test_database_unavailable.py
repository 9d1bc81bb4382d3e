"""The database away — down, cut off, or refusing connections — is a 503 with Retry-After in
the one error shape, on the API and on the auth endpoints alike, never a 500; and once it is
back, the very next requests succeed (the pool throws the dead connections away).

A real PostgreSQL, reached through TCP proxies (tests/support/tcp_proxy.py) that the test
cuts and restores: one for the lab's database, one for the auth store's."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from dependency_injector import providers
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from adapters.auth.passwords import cheap_password_hasher
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.auth.users import CreateUserRequest
from application.errors import StoreUnavailable
from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_app, create_container
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

EMAIL, PASSWORD = "admin@lab.example", "admin-password-0"


def through(proxy: TcpProxy, url: str) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)


@pytest.fixture
def proxies(empty_postgres_url):
    target = make_url(empty_postgres_url)
    lab = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    auth = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    yield lab, auth
    lab.cut()
    auth.cut()


@pytest.fixture
def app(proxies, empty_postgres_url, empty_auth_postgres_url, tmp_path):
    lab, auth = proxies
    settings = Settings.from_env(
        {
            "DEVICELAB_DATA_DIR": str(tmp_path),
            "DEVICELAB_SECRET_KEY": "database-away-tests-secret-0123456789-abcdef",
            "DEVICELAB_DATABASE_URL": through(lab, empty_postgres_url),
            "DEVICELAB_AUTH_DATABASE_URL": through(auth, empty_auth_postgres_url),
        }
    )
    container = create_container(settings)
    container.password_hasher.override(providers.Object(cheap_password_hasher()))
    container.create_user()(CreateUserRequest(EMAIL, "admin", "admin", PASSWORD))
    app = create_app(container)
    app.testing = True  # an unexpected exception fails the test instead of answering 500
    yield app
    container.unwire()
    dispose_engines(container)


def sign_in(client) -> None:
    response = client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {response.get_json()['token']}"


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    body = response.get_json()
    assert body["code"] == "store_unavailable", body
    assert set(body) >= {"code", "message", "errors"} and body["message"]
    assert body["retry_after"] == int(response.headers["Retry-After"])


def make_lab(client) -> dict:
    def post(path, body):
        response = client.post(path, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    case = {"name": "v", "criteria": [{"metric": "v", "condition": "<", "threshold": 1}]}
    return {
        "test_case_ids": [post("/api/test-cases", case)],
        "environment_id": post("/api/environments", {"name": "bench"}),
        "device_ids": [post("/api/devices", {"name": "meter"})],
    }


def test_the_lab_database_away_is_503_then_starts_work_again(app, proxies):
    lab_proxy, _ = proxies
    client = app.test_client()
    sign_in(client)
    start = make_lab(client)
    assert client.get("/api/devices").status_code == 200  # connections are pooled now

    lab_proxy.cut()
    assert_unavailable(client.post("/api/test-runs", json=start))
    assert_unavailable(client.get("/api/devices"))
    assert_unavailable(client.get("/api/test-runs"))

    lab_proxy.restore()
    response = client.post("/api/test-runs", json=start)
    assert response.status_code == 201, response.get_json()
    assert client.get("/api/devices").get_json()["items"][0]["status"] == "in_test"


def test_the_auth_database_away_is_503_on_login_and_token_checks(app, proxies):
    _, auth_proxy = proxies
    client = app.test_client()
    sign_in(client)
    assert client.get("/auth/session").status_code == 200

    auth_proxy.cut()
    anonymous = app.test_client()
    assert_unavailable(anonymous.post("/auth/login", json={"email": EMAIL, "password": PASSWORD}))
    assert_unavailable(client.get("/auth/session"))
    assert_unavailable(client.get("/api/devices"))  # the token cannot be checked

    auth_proxy.restore()
    sign_in(anonymous)
    assert client.get("/api/devices").status_code == 200


@pytest.fixture
def role_without_connections(postgres_server, empty_postgres_url):
    """A PostgreSQL role that may log in but has no connection left: the server answers
    `too many connections for role` (SQLSTATE 53300), as with `too many clients`."""
    name = f"devicelab_test_full_{uuid.uuid4().hex[:8]}"
    with postgres_server.admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE ROLE "{name}" LOGIN CONNECTION LIMIT 0')
    yield make_url(empty_postgres_url).set(username=name, password=None).render_as_string(False)
    with postgres_server.admin.connect() as connection:
        connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')


def test_a_server_out_of_connections_is_store_unavailable(role_without_connections):
    engine = make_engine(role_without_connections, poolclass=NullPool)
    try:
        with pytest.raises(sa.exc.OperationalError, match="too many connections"):
            engine.connect()
        factory = make_session_factory(engine)
        # what the use cases see
        with pytest.raises(StoreUnavailable) as raised, SqlAlchemyUnitOfWork(factory) as uow:
            uow.devices.get("any")
        assert isinstance(raised.value.__cause__, sa.exc.OperationalError)
        with (
            pytest.raises(StoreUnavailable),
            SqlAlchemyUnitOfWork(factory, read_only=True) as uow,
        ):
            uow.devices.get("any")
    finally:
        engine.dispose()
