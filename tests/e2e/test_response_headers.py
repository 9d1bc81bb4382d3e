"""Every answer of the API, errors included, is `nosniff` and `no-store`; the web UI's files
keep their own caching. And the OpenAPI document allows what the API answers (a run's
verdict is null until it has finished)."""

from __future__ import annotations

import pytest


@pytest.fixture
def backend():
    return None  # in memory: headers do not depend on the storage


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/devices", 200),
        ("get", "/api/health", 200),
        ("get", "/api/openapi.json", 200),
        ("get", "/api/devices/no-such-device", 404),
        ("put", "/api/devices", 405),
        ("post", "/api/devices", 422),
        ("get", "/api/no/such/path", 404),
        ("get", "/auth/session", 200),
        ("get", "/auth/users/nobody", 404),
    ],
)
def test_api_answers_are_nosniff_and_no_store(client, method, path, status):
    response = getattr(client, method)(path, json={} if method != "get" else None)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_unauthenticated_and_login_answers_too(anonymous):
    for response in (
        anonymous.get("/api/devices"),
        anonymous.post("/auth/login", json={"email": "x@lab.example", "password": "wrong-one"}),
    ):
        assert response.status_code == 401
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


def test_the_web_ui_keeps_its_caching(anonymous):
    response = anonymous.get("/runs/some-run")
    assert response.headers.get("Cache-Control") != "no-store"


def test_a_queued_runs_null_verdict_is_allowed_by_the_schema(client, lab):
    run = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][0]["id"]],
        },
    ).get_json()
    assert run["verdict"] is None
    spec = client.get("/api/openapi.json").get_json()
    verdict = spec["components"]["schemas"]["TestRun"]["properties"]["verdict"]
    assert verdict.get("nullable") is True and None in verdict["enum"], verdict
