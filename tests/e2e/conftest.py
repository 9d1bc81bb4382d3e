"""HTTP tests: the real Flask app, through its test client, on each storage backend."""

from __future__ import annotations

import pytest
from dependency_injector import providers

from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
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
def container(backend, tmp_path):
    env = {
        "DEVICELAB_DATA_DIR": str(tmp_path),
        "DEVICELAB_MAX_BODY_BYTES": "65536",
        "DEVICELAB_SECRET_KEY": "e2e-tests-secret-key-0123456789-abcdefghij",
    }
    if backend:
        from adapters.persistence.schema import upgrade_schema

        env["DEVICELAB_DATABASE_URL"] = backend
        if backend.startswith("sqlite"):
            upgrade_schema(backend)
    container = create_container(Settings.from_env(env))
    if backend is None:
        store = InMemoryStore()
        container.uow.override(providers.Factory(InMemoryUnitOfWork, store))
        container.readiness_checks.override(providers.List())
    yield container
    container.unwire()
    if backend:
        container.engine().dispose()


@pytest.fixture
def client(container):
    app = create_app(container)
    app.testing = True
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
