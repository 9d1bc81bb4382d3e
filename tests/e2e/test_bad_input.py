"""Whatever a client sends, it gets a clear 4xx in one JSON shape, never a 500."""

from __future__ import annotations

import pytest


def assert_error(response, status, code=None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"code", "message", "errors"}, body
    assert isinstance(body["message"], str) and body["message"]
    if code:
        assert body["code"] == code, body
    return body


def test_malformed_json(client):
    response = client.post("/api/devices", data="{not json", content_type="application/json")
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize(
    "body",
    [
        [],
        "a string",
        {"name": ""},
        {"name": 12},
        {"name": "x", "labels": {"": "empty key"}},
        {"name": "x", "labels": ["not", "a", "dict"]},
        {"name": "x", "unexpected": 1},
        {"name": "x" * 300},
        {"name": "x", "status": "in_test"},
    ],
)
def test_invalid_device_bodies(client, body):
    assert_error(client.post("/api/devices", json=body), 422, "validation_error")


def test_validation_errors_name_the_field(client):
    body = assert_error(client.post("/api/devices", json={"model": "x"}), 422)
    assert "name" in body["errors"]


def test_duplicate_name_is_conflict(client, lab):
    body = assert_error(
        client.post("/api/devices", json={"name": "meter-0"}), 409, "already_exists"
    )
    assert "name" in body["errors"]
    renamed = client.patch(f"/api/devices/{lab['devices'][1]['id']}", json={"name": "meter-0"})
    assert_error(renamed, 409, "already_exists")


@pytest.mark.parametrize(
    "criteria",
    [
        [],
        [{"metric": "v", "condition": "=~", "threshold": 1}],
        [{"metric": "", "condition": "<", "threshold": 1}],
        [{"metric": "v", "condition": "<", "threshold": "high"}],
        [{"metric": "v", "condition": "<"}],
        "voltage < 5",
    ],
)
def test_invalid_criteria(client, criteria):
    response = client.post("/api/test-cases", json={"name": "t", "criteria": criteria})
    body = assert_error(response, 422)
    assert "criteria" in body["errors"]


def test_nan_threshold_is_rejected(client):
    raw = '{"name": "t", "criteria": [{"metric": "v", "condition": "<", "threshold": NaN}]}'
    response = client.post("/api/test-cases", data=raw, content_type="application/json")
    assert response.status_code in (400, 422)
    assert_error(response, response.status_code)


def test_timeout_shorter_than_duration(client):
    body = {
        "name": "t",
        "duration_s": 100,
        "timeout_s": 10,
        "criteria": [{"metric": "v", "condition": "<", "threshold": 1}],
    }
    assert "timeout_s" in assert_error(client.post("/api/test-cases", json=body), 422)["errors"]


def test_unknown_ids(client, lab, report):
    assert_error(client.get("/api/devices/nope"), 404, "not_found")
    assert_error(client.get("/api/test-runs/nope"), 404, "not_found")
    assert_error(client.patch("/api/test-cases/nope", json={"name": "n"}), 404)
    assert_error(client.delete("/api/environments/nope"), 404)
    assert_error(report("nope", "started", {}), 404)
    assert_error(client.post("/api/test-runs/nope/cancel", json={}), 404)
    assert_error(client.get("/api/no-such-route"), 404)


def test_start_with_unknown_or_bad_references(client, lab):
    base = {
        "test_case_ids": [lab["cases"][0]["id"]],
        "environment_id": lab["environment"]["id"],
        "device_ids": [lab["devices"][0]["id"]],
    }
    cases = [
        ({**base, "device_ids": ["ghost"]}, "device_ids"),
        ({**base, "test_case_ids": ["ghost"]}, "test_case_ids"),
        ({**base, "environment_id": "ghost"}, "environment_id"),
        ({**base, "device_ids": []}, "device_ids"),
        ({**base, "device_ids": [lab["devices"][0]["id"]] * 2}, "device_ids"),
        ({**base, "test_case_ids": "not-a-list"}, "test_case_ids"),
    ]
    for body, field in cases:
        error = assert_error(client.post("/api/test-runs", json=body), 422)
        assert field in error["errors"], (body, error)
    # nothing was reserved by any of the refused starts
    assert client.get(f"/api/devices/{lab['devices'][0]['id']}").get_json()["status"] == "available"


def test_bad_query_arguments(client):
    assert_error(client.get("/api/devices?limit=0"), 422)
    assert_error(client.get("/api/devices?limit=abc"), 422)
    assert_error(client.get("/api/devices?status=broken"), 422)
    assert_error(client.get("/api/devices?cursor=garbage!!"), 422)
    assert_error(client.get("/api/test-runs?from=yesterday"), 422)
    assert_error(
        client.get("/api/test-runs?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"), 422
    )


def test_cursor_of_another_list_is_rejected(client, lab):
    page = client.get("/api/devices?limit=1").get_json()
    body = assert_error(client.get(f"/api/test-runs?cursor={page['next_cursor']}"), 422)
    assert "cursor" in body["errors"]


def test_status_override_rules(client, lab):
    device = lab["devices"][0]["id"]
    assert_error(client.post(f"/api/devices/{device}/status", json={"status": "in_test"}), 422)
    assert_error(client.post(f"/api/devices/{device}/status", json={"status": "gone"}), 422)
    assert_error(client.post(f"/api/devices/{device}/status", json={}), 422)


def test_oversized_body(client):
    huge = {"name": "x", "description": "y" * 200_000, "criteria": []}
    assert_error(client.post("/api/test-cases", json=huge), 413, "payload_too_large")


def test_bad_runner_reports(client, lab, report):
    run = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][0]["id"]],
        },
    ).get_json()
    assert_error(report(run["id"], "progress", {"progress": 2}), 422)
    assert_error(report(run["id"], "progress", {}), 422)
    assert_error(report(run["id"], "result", {"results": "none"}), 422)
    other_device = {
        "results": [
            {
                "test_case_id": lab["cases"][0]["id"],
                "device_id": lab["devices"][2]["id"],
                "measurements": [],
            }
        ]
    }
    assert "results" in assert_error(report(run["id"], "result", other_device), 422)["errors"]
    bad_value = {
        "results": [
            {
                "test_case_id": lab["cases"][0]["id"],
                "device_id": lab["devices"][0]["id"],
                "measurements": [{"metric": "voltage", "value": "high"}],
            }
        ]
    }
    assert_error(report(run["id"], "result", bad_value), 422)
    # none of that touched the run
    assert client.get(f"/api/test-runs/{run['id']}").get_json()["status"] == "queued"


def test_wrong_method(client):
    response = client.put("/api/devices", json={})
    assert_error(response, 405, "method_not_allowed")
    # RFC 9110: a 405 names the methods the resource has
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}
