"""Over HTTP: maintenance and retirement by hand, drains, who may do what, and the list."""

from __future__ import annotations

import pytest

from tests.e2e.test_api_flow import start


def set_status(client, device, status, reason=""):
    return client.post(
        f"/api/devices/{device['id']}/status", json={"status": status, "reason": reason}
    )


def test_an_engineer_sets_maintenance_with_a_reason_and_it_is_sticky(client, lab, signed_in):
    engineer = signed_in("engineer")
    device = lab["devices"][0]

    response = set_status(engineer, device, "maintenance", "recalibrate the CT")

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["service_state"]) == ("maintenance", "maintenance")
    assert body["out_of_service"]["reason"] == "recalibrate the CT"
    assert body["out_of_service"]["by"].startswith("engineer")
    assert body["out_of_service"]["since"] is not None
    seen = client.post(f"/api/devices/{device['id']}/heartbeat", json={})
    assert seen.get_json()["status"] == "maintenance"
    refused = start(client, lab, [0, 1], when_busy="reject")
    assert refused.status_code == 409
    assert refused.get_json()["unavailable"] == {device["id"]: "maintenance"}
    assert device["name"] in refused.get_json()["message"]
    waiting = start(client, lab, [0, 1])  # queued by default: it waits, booking nothing
    assert (waiting.status_code, waiting.get_json()["status"]) == (201, "waiting")
    client.post(f"/api/test-runs/{waiting.get_json()['id']}/cancel", json={"reason": "test"})
    listed = client.get("/api/devices?status=maintenance").get_json()["items"]
    assert [d["id"] for d in listed] == [device["id"]]
    history = client.get(f"/api/devices/{device['id']}/history").get_json()
    assert (history[0]["to_status"], history[0]["reason"]) == ("maintenance", "recalibrate the CT")


@pytest.mark.parametrize("status", ["maintenance", "retired"])
def test_maintenance_and_retirement_without_a_reason_are_a_clear_422(client, lab, status):
    response = set_status(client, lab["devices"][0], status, " ")
    assert response.status_code == 422
    assert "reason" in response.get_json()["errors"]


def test_a_viewer_may_not_set_maintenance(client, lab, signed_in):
    response = set_status(signed_in("viewer"), lab["devices"][0], "maintenance", "x")
    assert response.status_code == 403
    assert client.get(f"/api/devices/{lab['devices'][0]['id']}").get_json()["status"] == (
        "available"
    )


def test_a_device_in_test_is_drained_and_the_drain_can_be_cancelled(client, lab):
    first, second = lab["devices"][0], lab["devices"][1]
    run = start(client, lab, [0, 1]).get_json()

    drained = set_status(client, first, "maintenance", "swap probe").get_json()
    kept = set_status(client, second, "maintenance", "swap probe").get_json()
    assert (drained["status"], drained["drain_pending"]) == ("in_test", True)
    assert set_status(client, second, "available", "not now").get_json()["drain_pending"] is False
    assert kept["drain_pending"] is True
    client.post(f"/api/test-runs/{run['id']}/cancel", json={})

    after = client.get(f"/api/devices/{first['id']}").get_json()
    assert (after["status"], after["drain_pending"]) == ("maintenance", False)
    assert after["out_of_service"]["reason"] == "swap probe"
    assert client.get(f"/api/devices/{second['id']}").get_json()["status"] == "available"


def test_retired_devices_leave_the_list_and_only_an_admin_brings_them_back(client, lab, signed_in):
    engineer = signed_in("engineer")
    device = lab["devices"][2]
    run = start(client, lab, [2]).get_json()
    assert set_status(engineer, device, "retired", "display broken").status_code == 409
    client.post(f"/api/test-runs/{run['id']}/cancel", json={})

    retired = set_status(engineer, device, "retired", "display broken")

    assert retired.status_code == 200 and retired.get_json()["status"] == "retired"
    default = [d["id"] for d in client.get("/api/devices").get_json()["items"]]
    assert device["id"] not in default and len(default) == len(lab["devices"]) - 1
    only = client.get("/api/devices?status=retired").get_json()["items"]
    assert [d["id"] for d in only] == [device["id"]]
    everyone = client.get("/api/devices?include_retired=true").get_json()["items"]
    assert device["id"] in [d["id"] for d in everyone]
    impossible = start(client, lab, [2])  # a retired device is never booked again
    assert impossible.status_code == 422 and "retired" in impossible.get_json()["message"]

    refused = set_status(engineer, device, "available", "fixed after all")
    assert refused.status_code == 409
    assert "admin" in refused.get_json()["message"]
    back = set_status(client, device, "available", "fixed after all")
    assert back.status_code == 200 and back.get_json()["status"] == "available"


@pytest.mark.parametrize("status", ["in_test", "silent", "in_service", "broken"])
def test_statuses_that_are_not_set_by_hand_are_a_clear_422(client, lab, status):
    response = set_status(client, lab["devices"][0], status, "x")
    assert response.status_code == 422
    assert "status" in response.get_json()["errors"]
