"""The live event stream and the dashboard numbers."""

from __future__ import annotations

import json


def parse_events(text):
    events = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if "event" in fields:
            events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return events


def test_events_replay_changes_after_a_position(client, lab):
    device = lab["devices"][0]
    client.post(f"/api/devices/{device['id']}/status", json={"status": "offline"})
    response = client.get("/api/events?after=0&max_seconds=1")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = parse_events(response.get_data(as_text=True))
    devices = [data for _, name, data in events if name == "device"]
    # the last event of this device shows its current state
    assert [d for d in devices if d["id"] == device["id"]][-1]["status"] == "offline"
    ids = [event_id for event_id, _, _ in events]
    assert ids == sorted(ids)

    # resuming after the last id gives nothing old, and a new change arrives
    last = ids[-1]
    client.post("/api/devices", json={"name": "fresh"})
    later = parse_events(
        client.get("/api/events?max_seconds=1", headers={"Last-Event-ID": str(last)}).get_data(
            as_text=True
        )
    )
    assert [data["name"] for _, name, data in later if name == "device"] == ["fresh"]


def test_run_changes_are_streamed(client, lab):
    run = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][1]["id"]],
        },
    ).get_json()
    client.post(f"/api/test-runs/{run['id']}/cancel", json={})
    events = parse_events(client.get("/api/events?after=0&max_seconds=1").get_data(as_text=True))
    runs = [data for _, name, data in events if name == "run" and data["id"] == run["id"]]
    assert runs[-1]["status"] == "aborted"


def test_bad_event_arguments(client):
    assert client.get("/api/events?after=-1").status_code == 422
    assert client.get("/api/events?max_seconds=0").status_code == 422


def test_statistics(client, lab, report):
    runs = []
    for index in range(2):
        runs.append(
            client.post(
                "/api/test-runs",
                json={
                    "test_case_ids": [lab["cases"][0]["id"]],
                    "environment_id": lab["environment"]["id"],
                    "device_ids": [lab["devices"][index]["id"]],
                },
            ).get_json()
        )
    case_id = lab["cases"][0]["id"]
    for run, value in zip(runs, [230, 250], strict=True):
        body = {
            "results": [
                {
                    "test_case_id": case_id,
                    "device_id": run["devices"][0]["id"],
                    "measurements": [{"metric": "voltage", "value": value}],
                }
            ]
        }
        assert report(run["id"], "result", body).status_code == 200
    stats = client.get("/api/stats").get_json()
    assert stats["devices_by_status"] == {
        "available": 3,
        "in_test": 0,
        "held": 0,
        "offline": 0,
        "maintenance": 0,
        "retired": 0,
    }
    assert stats["runs_by_status"]["completed"] == 2
    assert len(stats["pass_rate_by_day"]) == 30
    today = stats["pass_rate_by_day"][-1]
    assert (today["pass"], today["fail"], today["inconclusive"]) == (1, 1, 0)
    assert stats["most_failing_test_cases"] == [
        {"test_case_id": case_id, "name": "voltage", "failures": 1, "runs": 2}
    ]


def test_stream_events_carry_devices_and_runs_as_the_rest_api_shows_them(client, lab):
    device = lab["devices"][2]
    client.patch(f"/api/devices/{device['id']}", json={"labels": {"bench": "C"}})
    run = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [device["id"]],
        },
    ).get_json()
    events = parse_events(client.get("/api/events?after=0&max_seconds=1").get_data(as_text=True))
    last_device = [d for _, name, d in events if name == "device" and d["id"] == device["id"]][-1]
    last_run = [d for _, name, d in events if name == "run" and d["id"] == run["id"]][-1]
    assert last_device == client.get(f"/api/devices/{device['id']}").get_json()
    shown = client.get(f"/api/test-runs/{run['id']}").get_json()
    assert last_run == shown
