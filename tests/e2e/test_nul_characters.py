"""A NUL character anywhere in a request is refused with 422 and changes nothing — on every
backend, PostgreSQL included, whose text and jsonb cannot hold one (it answered 500 before;
found by tests/e2e/test_openapi_fuzz.py)."""

from __future__ import annotations

import pytest

CRITERIA = [{"metric": "v", "condition": "<", "threshold": 1}]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/devices", {"name": "meter\x00"}, "name"),
        ("post", "/api/devices", {"name": "m", "labels": {"k\x00": "v"}}, "labels.k"),
        ("post", "/api/environments", {"name": "e", "variables": {"t": "4\x000"}}, "variables.t"),
        (
            "post",
            "/api/test-cases",
            {"name": "c", "criteria": CRITERIA, "tags": ["a\x00"]},
            "tags[0]",
        ),
        ("get", "/api/devices?q=a%00b", None, "q"),
        ("get", "/api/test-runs?firmware=1.%00", None, "firmware"),
        ("get", "/api/devices/no%00such", None, "device_id"),
        ("post", "/auth/login", {"email": "admin@lab.example\x00", "password": "x" * 8}, "email"),
    ],
)
def test_refused_with_422_naming_the_field(client, method, path, body, field):
    before = client.get("/api/devices").get_json()["items"]
    response = getattr(client, method)(path, json=body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert error["code"] == "validation_error" and field in error["errors"], error
    assert client.get("/api/devices").get_json()["items"] == before


def test_a_runner_report_with_a_nul_changes_nothing(client, lab, report):
    device = lab["devices"][0]["id"]
    body = {
        "test_case_ids": [lab["cases"][0]["id"]],
        "environment_id": lab["environment"]["id"],
        "device_ids": [device],
    }
    run = client.post("/api/test-runs", json=body).get_json()
    answer = report(run["id"], "failed", {"reason": "stderr: \x00\x00 garbage"})
    assert answer.status_code == 422
    assert client.get(f"/api/test-runs/{run['id']}").get_json()["status"] == "queued"
    assert report(run["id"], "failed", {"reason": "stderr: garbage"}).status_code == 200
