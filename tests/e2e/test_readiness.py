"""/api/ready: 503 only when the API cannot serve (its database is away); the broker away only
degrades it, since a started run's job waits in the outbox until the broker is back."""

from __future__ import annotations

import pytest

from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_app, create_container

UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1//"


@pytest.fixture
def backend(tmp_path):
    """Real readiness checks need a real database: SQLite here (overrides the conftest's)."""
    return f"sqlite:///{tmp_path / 'ready.db'}"


def test_all_answering_is_ready(anonymous):
    response = anonymous.get("/api/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["degraded"] == [] and body["unavailable"] == []
    assert set(body["checks"]) == {"database", "broker", "auth_database"}


def test_the_broker_away_degrades_but_stays_ready_and_runs_still_start(container, client, lab):
    container.config.set("broker_url", UNREACHABLE_BROKER)
    response = client.get("/api/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["degraded"] == ["broker"] and body["unavailable"] == []
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] != "ok"
    started = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][0]["id"]],
        },
    )
    assert started.status_code == 201, started.get_json()  # its job waits in the outbox


def test_the_database_away_is_503(tmp_path):
    container = create_container(
        Settings.from_env(
            {
                "DEVICELAB_DATA_DIR": str(tmp_path),
                "DEVICELAB_DATABASE_URL": "postgresql+psycopg2://devicelab@127.0.0.1:1/nowhere",
                "DEVICELAB_SECRET_KEY": "ready-tests-secret-key-0123456789-abcdefghij",
            }
        )
    )
    try:
        response = create_app(container).test_client().get("/api/ready")
        assert response.status_code == 503
        body = response.get_json()
        assert body["status"] == "not_ready"
        assert body["unavailable"] == ["database", "auth_database"]
        assert body["checks"]["broker"] == "ok" and body["degraded"] == []
    finally:
        container.unwire()
        dispose_engines(container)
