"""Over HTTP: health-check designations (admins only), their bad input as clear 4xx answers,
device health in the device JSON, clearing it, and the purpose of a run in its JSON and the
list filter."""

from __future__ import annotations

import pytest


def designation(lab, **more):
    return {
        "name": "meter self test",
        "test_case_id": lab["cases"][0]["id"],
        "environment_id": lab["environment"]["id"],
        "labels": {"type": "meter"},
        "every_hours": 24,
        **more,
    }


def test_an_admin_designates_edits_and_removes_a_health_check(client, lab, signed_in):
    created = client.post("/api/health-checks", json=designation(lab))
    assert created.status_code == 201, created.get_json()
    check = created.get_json()
    assert (check["labels"], check["every_hours"], check["after_service"]) == (
        {"type": "meter"},
        24.0,
        True,
    )
    viewer = signed_in("viewer")
    assert [c["id"] for c in viewer.get("/api/health-checks").get_json()] == [check["id"]]
    patched = client.patch(f"/api/health-checks/{check['id']}", json={"every_runs": 10})
    assert (patched.status_code, patched.get_json()["every_runs"]) == (200, 10)
    assert client.delete(f"/api/health-checks/{check['id']}").status_code == 204
    assert client.get(f"/api/health-checks/{check['id']}").status_code == 404


def test_engineers_may_not_designate_health_checks(lab, signed_in):
    engineer = signed_in("engineer")
    response = engineer.post("/api/health-checks", json=designation(lab))
    assert response.status_code == 403
    assert engineer.get("/api/health-checks").get_json() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"test_case_id": None}, "test_case_id"),
        ({"every_hours": 0}, "every_hours"),
        ({"every_hours": "soon"}, "every_hours"),
        ({"every_runs": 0}, "every_runs"),
        ({"every_runs": 1.5}, "every_runs"),
        ({"labels": ["type"]}, "labels"),
        ({"after_service": "maybe"}, "after_service"),
        ({"model": "", "labels": {}}, "model"),
        ({"every_hours": None, "after_service": False}, "every_hours"),
        ({"test_case_id": "no-such-case"}, "test_case_id"),
        ({"environment_id": "no-such-env"}, "environment_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_designations_are_a_clear_422(client, lab, change, field):
    response = client.post("/api/health-checks", json=designation(lab, **change))
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert client.get("/api/health-checks").get_json() == []


def test_bad_edits_are_a_clear_422_and_unknown_ids_404(client, lab):
    check = client.post("/api/health-checks", json=designation(lab)).get_json()
    response = client.patch(f"/api/health-checks/{check['id']}", json={"every_runs": -1})
    assert response.status_code == 422
    assert client.patch("/api/health-checks/nope", json={"every_runs": 3}).status_code == 404
    assert client.delete("/api/health-checks/nope").status_code == 404


def test_device_health_is_in_the_device_json_and_clearing_a_healthy_device_is_409(
    client, lab, signed_in
):
    device = lab["devices"][0]
    body = client.get(f"/api/devices/{device['id']}").get_json()
    assert (body["health"], body["health_note"]) == ("unknown", None)
    listed = client.get("/api/devices").get_json()["items"]
    assert {d["health"] for d in listed} == {"unknown"}
    refused = client.post(f"/api/devices/{device['id']}/health/clear", json={})
    assert refused.status_code == 409
    assert "not bad" in refused.get_json()["message"]
    assert client.post("/api/devices/nope/health/clear", json={}).status_code == 404
    too_long = client.post(f"/api/devices/{device['id']}/health/clear", json={"reason": "x" * 501})
    assert too_long.status_code == 422
    viewer = signed_in("viewer")
    assert viewer.post(f"/api/devices/{device['id']}/health/clear", json={}).status_code == 403


def test_runs_say_their_purpose_and_the_list_filters_by_it(client, lab):
    run = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][0]["id"]],
        },
    ).get_json()
    assert run["purpose"] == "normal"
    normal = client.get("/api/test-runs?purpose=normal").get_json()["items"]
    assert [r["id"] for r in normal] == [run["id"]]
    assert client.get("/api/test-runs?purpose=health_check").get_json()["items"] == []
    assert client.get("/api/test-runs?purpose=sometimes").status_code == 422
