"""The main journeys through the REST API, checked on every backend."""

from __future__ import annotations


def start(client, lab, device_indexes, cases=(0,), **more):
    return client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][i]["id"] for i in cases],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][i]["id"] for i in device_indexes],
            "parameters": {"load_kw": 2},
            **more,
        },
    )


def device_status(client, device):
    return client.get(f"/api/devices/{device['id']}").get_json()["status"]


def test_health_and_ready(client):
    assert client.get("/api/health").get_json() == {"status": "ok"}
    ready = client.get("/api/ready")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "ready"


def test_openapi_and_docs_are_served(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["info"]["title"] == "devicelab"
    for path in ["/api/devices", "/api/test-runs", "/api/runner/test-runs/{run_id}/result"]:
        assert path in spec["paths"]
    assert client.get("/api/docs").status_code == 200


def test_run_lifecycle_reserves_reports_and_releases(client, lab, report):
    response = start(client, lab, [0, 1])
    assert response.status_code == 201, response.get_json()
    run = response.get_json()
    assert run["status"] == "queued"
    assert run["test_cases"][0]["parameters"] == {"load_kw": 2}
    assert [device_status(client, d) for d in lab["devices"]] == ["in_test", "in_test", "available"]

    # a second run on an overlapping device that will not wait is refused, naming the device,
    # reserving nothing
    clash = start(client, lab, [1, 2], when_busy="reject")
    assert clash.status_code == 409
    body = clash.get_json()
    assert body["code"] == "device_unavailable"
    busy = lab["devices"][1]
    assert body["unavailable"] == {busy["id"]: "in_test"}
    assert body["unavailable_names"] == {busy["id"]: busy["name"]}
    assert f"{busy['name']} ({busy['id']}, in_test)" in body["message"]
    assert device_status(client, lab["devices"][2]) == "available"

    started = report(run["id"], "started", {})
    assert started.status_code == 200 and started.get_json()["run"]["status"] == "running"
    assert report(run["id"], "started", {}).get_json()["changed"] is False

    progress = report(run["id"], "progress", {"progress": 0.5, "message": "half way"})
    assert progress.get_json()["run"]["progress"] == 0.5

    case_id = lab["cases"][0]["id"]
    result = {
        "results": [
            {
                "test_case_id": case_id,
                "device_id": lab["devices"][0]["id"],
                "measurements": [{"metric": "voltage", "value": 231.5, "unit": "V"}],
            },
            {
                "test_case_id": case_id,
                "device_id": lab["devices"][1]["id"],
                "measurements": [{"metric": "voltage", "value": 243.0, "unit": "V"}],
            },
        ]
    }
    done = report(run["id"], "result", result)
    assert done.status_code == 200, done.get_json()
    outcome = done.get_json()
    assert outcome["changed"] is True
    assert sorted(outcome["released_device_ids"]) == sorted(d["id"] for d in lab["devices"][:2])
    assert outcome["run"]["status"] == "completed"
    assert outcome["run"]["verdict"] == "fail"
    verdicts = {r["device_id"]: r["verdict"] for r in outcome["run"]["results"]}
    assert verdicts == {lab["devices"][0]["id"]: "pass", lab["devices"][1]["id"]: "fail"}
    measurement = outcome["run"]["results"][0]["measurements"][0]
    assert set(measurement) >= {"metric", "value", "unit", "passed", "threshold", "condition"}
    assert [device_status(client, d) for d in lab["devices"]] == ["available"] * 3

    # the same report again: accepted, nothing changes; a different one: conflict
    again = report(run["id"], "result", result)
    assert again.status_code == 200 and again.get_json()["changed"] is False
    result["results"][1]["measurements"][0]["value"] = 230.0
    assert report(run["id"], "result", result).status_code == 409
    # a late progress report for a finished run
    assert report(run["id"], "progress", {"progress": 0.9}).status_code == 409

    fetched = client.get(f"/api/test-runs/{run['id']}").get_json()
    assert fetched["verdict"] == "fail" and len(fetched["results"]) == 2

    history = client.get(f"/api/devices/{lab['devices'][0]['id']}/history").get_json()
    assert [(h["from_status"], h["to_status"]) for h in history][:2] == [
        ("in_test", "available"),
        ("available", "in_test"),
    ]


def test_cancel_frees_devices_and_late_reports_conflict(client, lab, report):
    run = start(client, lab, [0]).get_json()
    cancelled = client.post(f"/api/test-runs/{run['id']}/cancel", json={"reason": "wrong fw"})
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "aborted"
    assert cancelled.get_json()["failure_reason"] == "wrong fw"
    assert device_status(client, lab["devices"][0]) == "available"
    late = report(run["id"], "started", {})
    assert late.status_code == 409
    assert late.get_json()["code"] == "run_finished"


def test_runner_failure_fails_the_run(client, lab, report):
    run = start(client, lab, [2]).get_json()
    failed = report(run["id"], "failed", {"reason": "no power"})
    assert failed.get_json()["run"]["status"] == "failed"
    assert failed.get_json()["run"]["failure_reason"] == "no power"
    assert device_status(client, lab["devices"][2]) == "available"


def test_missing_results_are_inconclusive(client, lab, report):
    run = start(client, lab, [0, 1]).get_json()
    case_id = lab["cases"][0]["id"]
    body = {
        "results": [
            {
                "test_case_id": case_id,
                "device_id": lab["devices"][0]["id"],
                "measurements": [{"metric": "voltage", "value": 230}],
            }
        ]
    }
    done = report(run["id"], "result", body).get_json()
    assert done["run"]["verdict"] == "inconclusive"


def test_device_offline_while_in_test_goes_offline_when_released(client, lab):
    device = lab["devices"][0]
    run = start(client, lab, [0]).get_json()
    response = client.post(
        f"/api/devices/{device['id']}/status", json={"status": "offline", "reason": "unplugged"}
    )
    assert response.get_json()["status"] == "in_test"
    assert response.get_json()["offline_pending"] is True
    client.post(f"/api/test-runs/{run['id']}/cancel", json={})
    assert device_status(client, device) == "offline"
    # offline by hand: a heartbeat records the device as seen but does not bring it back
    seen = client.post(f"/api/devices/{device['id']}/heartbeat", json={"firmware_version": "9.9"})
    assert seen.get_json()["status"] == "offline"
    assert seen.get_json()["firmware_version"] == "9.9"
    assert seen.get_json()["last_seen_at"] is not None
    back = client.post(f"/api/devices/{device['id']}/status", json={"status": "available"})
    assert back.get_json()["status"] == "available"
    assert back.get_json()["out_of_service"] is None


def test_offline_device_cannot_be_booked(client, lab):
    device = lab["devices"][2]
    client.post(f"/api/devices/{device['id']}/status", json={"status": "offline"})
    clash = start(client, lab, [2], when_busy="reject")
    assert clash.status_code == 409
    assert clash.get_json()["unavailable"] == {device["id"]: "offline"}


def test_run_history_filters_and_pagination(client, lab):
    ids = []
    for index in range(3):
        run = start(client, lab, [index], cases=(0, 1)).get_json()
        ids.append(run["id"])
        client.post(f"/api/test-runs/{run['id']}/cancel", json={})
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/test-runs", query_string=query).get_json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 3

    def filtered(**query):
        return [
            r["id"] for r in client.get("/api/test-runs", query_string=query).get_json()["items"]
        ]

    assert filtered(device_id=lab["devices"][1]["id"]) == [ids[1]]
    assert filtered(firmware="1.2") == [ids[2]]
    assert len(filtered(status="aborted")) == 3
    assert filtered(status="running") == []
    assert len(filtered(test_case_id=lab["cases"][1]["id"])) == 3
    assert len(filtered(environment_id=lab["environment"]["id"])) == 3
    assert filtered(**{"from": "2999-01-01T00:00:00Z"}) == []
    assert len(filtered(to="2999-01-01T00:00:00Z")) == 3


def test_device_list_filters(client, lab):
    def names(**query):
        items = client.get("/api/devices", query_string=query).get_json()["items"]
        return [d["name"] for d in items]

    assert names() == ["meter-0", "meter-1", "meter-2"]
    assert names(label="bench:B") == ["meter-2"]
    assert names(label="type") == ["meter-0", "meter-1", "meter-2"]
    assert names(q="METER-1") == ["meter-1"]
    client.post(f"/api/devices/{lab['devices'][0]['id']}/status", json={"status": "offline"})
    assert names(status="offline") == ["meter-0"]
    page = client.get("/api/devices", query_string={"limit": 2}).get_json()
    rest = client.get("/api/devices", query_string={"limit": 2, "cursor": page["next_cursor"]})
    assert [d["name"] for d in rest.get_json()["items"]] == ["meter-2"]
    assert rest.get_json()["next_cursor"] is None


def test_test_case_edit_bumps_version_and_runs_keep_their_snapshot(client, lab):
    case = lab["cases"][0]
    run = start(client, lab, [0]).get_json()
    edited = client.patch(
        f"/api/test-cases/{case['id']}",
        json={"criteria": [{"metric": "voltage", "condition": "<", "threshold": 250}]},
    )
    assert edited.status_code == 200 and edited.get_json()["version"] == 2
    assert client.delete(f"/api/test-cases/{case['id']}").status_code == 204
    assert client.delete(f"/api/environments/{lab['environment']['id']}").status_code == 204
    kept = client.get(f"/api/test-runs/{run['id']}").get_json()
    assert kept["test_cases"][0]["version"] == 1
    assert kept["test_cases"][0]["criteria"][0]["threshold"] == 240
    assert kept["environment"]["name"] == "bench"
    assert client.get(f"/api/test-cases/{case['id']}").status_code == 404


def test_crud_of_environments_and_devices(client, lab):
    env = lab["environment"]
    patched = client.patch(f"/api/environments/{env['id']}", json={"variables": {"temp": "-25"}})
    assert patched.get_json()["variables"] == {"temp": "-25"}
    listed = client.get("/api/environments", query_string={"q": "ben"}).get_json()["items"]
    assert [e["name"] for e in listed] == ["bench"]
    device = lab["devices"][2]
    renamed = client.patch(f"/api/devices/{device['id']}", json={"location": "shelf 3"})
    assert renamed.get_json()["location"] == "shelf 3"
    assert client.delete(f"/api/devices/{device['id']}").status_code == 204
    assert client.get(f"/api/devices/{device['id']}").status_code == 404


def test_deleting_a_device_in_test_is_refused(client, lab):
    start(client, lab, [0])
    response = client.delete(f"/api/devices/{lab['devices'][0]['id']}")
    assert response.status_code == 409
    assert response.get_json()["code"] == "invalid_transition"
    assert client.get(f"/api/devices/{lab['devices'][0]['id']}").status_code == 200
