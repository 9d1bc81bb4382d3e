"""HTTP tests: the real Flask app, through its test client, on each storage backend.

The auth store goes with the backend: in memory, in the same SQLite file, or in a PostgreSQL
database of its own (as with DEVICELAB_AUTH_DATABASE_URL). `client` is signed in as an admin;
`anonymous` sends no token; `signed_in(role)` makes a user of that role and signs them in."""

from __future__ import annotations

import pytest
from dependency_injector import providers

from adapters.auth.passwords import cheap_password_hasher
from adapters.persistence.auth_in_memory import InMemoryAuthStore, InMemoryAuthUnitOfWork
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.auth.users import CreateUserRequest
from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_app, create_container


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path):
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'e2e.db'}"
    return request.getfixturevalue("empty_postgres_url")


@pytest.fixture
def container(request, backend, tmp_path):
    env = {
        "DEVICELAB_DATA_DIR": str(tmp_path),
        "DEVICELAB_MAX_BODY_BYTES": "65536",
        "DEVICELAB_SECRET_KEY": "e2e-tests-secret-key-0123456789-abcdefghij",
    }
    if backend:
        env["DEVICELAB_DATABASE_URL"] = backend
        if backend.startswith("sqlite"):
            request.getfixturevalue("migrated_sqlite")(backend, auth=True)
        else:
            env["DEVICELAB_AUTH_DATABASE_URL"] = request.getfixturevalue("empty_auth_postgres_url")
    container = create_container(Settings.from_env(env))
    container.password_hasher.override(providers.Object(cheap_password_hasher()))
    if backend is None:
        store = InMemoryStore()
        container.uow.override(providers.Factory(InMemoryUnitOfWork, store))
        container.readiness_checks.override(providers.List())
        auth_store = InMemoryAuthStore()
        container.auth_uow.override(providers.Factory(InMemoryAuthUnitOfWork, auth_store))
        # no auth database to count login attempts in: this one process counts them itself
        container.login_limit_storage.override(providers.Object(("memory://", {})))
    yield container
    container.unwire()
    if backend:
        dispose_engines(container)


ADMIN_EMAIL, ADMIN_PASSWORD = "admin@lab.example", "admin-password-0"


@pytest.fixture
def app(container):
    app = create_app(container)
    app.testing = True
    return app


def sign_in(app, email, password):
    """A test client that sends the session token of `email` with every request."""
    client = app.test_client()
    response = client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    client.token = response.get_json()["token"]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {client.token}"
    return client


@pytest.fixture
def signed_in(app, container):
    """signed_in(role) -> a client signed in as a new user with that role."""
    made = []

    def make(role, email=None, password="a-fine-password"):
        email = email or f"{role}-{len(made)}@lab.example"
        container.create_user()(CreateUserRequest(email, f"{role} {len(made)}", role, password))
        made.append(email)
        return sign_in(app, email, password)

    return make


@pytest.fixture
def client(signed_in):
    """Signed in as an admin: may do everything."""
    return signed_in("admin", ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture
def anonymous(app):
    """No token at all."""
    return app.test_client()


@pytest.fixture
def lab(client):
    """A small lab: three devices, two test cases, one environment."""

    def post(path, body):
        response = client.post(path, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    devices = [
        post(
            "/api/devices",
            {
                "name": f"meter-{i}",
                "firmware_version": f"1.{i}",
                "labels": {"type": "meter", "bench": "A" if i < 2 else "B"},
            },
        )
        for i in range(3)
    ]
    voltage = post(
        "/api/test-cases",
        {
            "name": "voltage",
            "criteria": [{"metric": "voltage", "condition": "<=", "threshold": 240, "unit": "V"}],
            "duration_s": 10,
            "timeout_s": 60,
        },
    )
    power = post(
        "/api/test-cases",
        {"name": "standby", "criteria": [{"metric": "power", "condition": "<", "threshold": 2}]},
    )
    environment = post("/api/environments", {"name": "bench", "variables": {"temp": "23"}})
    return {"devices": devices, "cases": [voltage, power], "environment": environment}


@pytest.fixture
def report(client, container):
    """Post a runner callback for a run, with that run's credential (as a runner would)."""
    from datetime import UTC, datetime, timedelta

    credentials = container.run_credentials()

    def post(run_id, what, body, token=None):
        if token is None:
            token = credentials.issue(run_id, datetime.now(UTC) + timedelta(hours=1))
        return client.post(
            f"/api/runner/test-runs/{run_id}/{what}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )

    return post
