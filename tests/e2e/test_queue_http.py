"""The lab queue through the REST API, on every backend: a run on a busy device waits (201,
status waiting, its position and what it waits for), shows in GET /api/queue, and starts by
itself when the device's run ends; requests by kind; the 422 for an impossible request."""

from __future__ import annotations


def start(client, lab, body):
    return client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            **body,
        },
    )


def test_a_run_on_a_busy_device_waits_in_the_queue_and_starts_when_it_frees(client, lab):
    meter = lab["devices"][0]
    first = start(client, lab, {"device_ids": [meter["id"]]}).get_json()
    assert first["status"] == "queued" and first["position"] is None

    answer = start(client, lab, {"device_ids": [meter["id"]], "priority": "high"})
    assert answer.status_code == 201, answer.get_json()
    waiting = answer.get_json()
    assert waiting["status"] == "waiting"
    assert waiting["devices"] == [] and waiting["priority"] == "high"
    assert waiting["position"] == 1
    assert waiting["waiting_for"] == {"devices": {meter["id"]: "busy"}, "requests": []}
    assert waiting["estimated_start_at"] is None
    assert waiting["queue_timeout_at"] is not None

    queue = client.get("/api/queue").get_json()["items"]
    assert [(e["position"], e["run"]["id"]) for e in queue] == [(1, waiting["id"])]
    assert queue[0]["waiting_for"]["devices"] == {meter["id"]: "busy"}
    listed = client.get("/api/test-runs?status=waiting").get_json()["items"]
    assert [(r["id"], r["position"]) for r in listed] == [(waiting["id"], 1)]

    cancelled = client.post(f"/api/test-runs/{first['id']}/cancel", json={})
    assert cancelled.status_code == 200

    now = client.get(f"/api/test-runs/{waiting['id']}").get_json()
    assert now["status"] == "queued" and now["position"] is None
    assert [d["id"] for d in now["devices"]] == [meter["id"]]
    assert client.get(f"/api/devices/{meter['id']}").get_json()["status"] == "in_test"
    assert client.get("/api/queue").get_json()["items"] == []


def test_devices_asked_for_by_labels_come_with_their_role(client, lab):
    answer = start(
        client,
        lab,
        {"device_requests": [{"role": "meter", "labels": {"bench": "A"}, "count": 2}]},
    )
    assert answer.status_code == 201, answer.get_json()
    run = answer.get_json()
    assert run["status"] == "queued"
    bench_a = {d["id"] for d in lab["devices"][:2]}
    assert {d["id"] for d in run["devices"]} == bench_a
    assert {d["role"] for d in run["devices"]} == {"meter"}
    assert run["device_requests"] == [
        {"role": "meter", "model": None, "labels": {"bench": "A"}, "count": 2}
    ]


def test_a_request_the_lab_can_never_satisfy_is_refused_naming_it(client, lab):
    answer = start(client, lab, {"device_requests": [{"labels": {"bench": "B"}, "count": 2}]})
    assert answer.status_code == 422, answer.get_json()
    body = answer.get_json()
    assert "#1" in body["message"] and "1 device matches" in body["message"]
    assert client.get("/api/test-runs").get_json()["items"] == []


def test_bad_queue_fields_are_refused(client, lab):
    meter = lab["devices"][0]["id"]
    for body in (
        {"device_ids": [meter], "when_busy": "maybe"},
        {"device_ids": [meter], "priority": "urgent"},
        {"device_ids": [meter], "queue_timeout_s": 0},
        {"device_requests": [{"count": 0}]},
        {"device_requests": [{"count": True}]},
        {},
    ):
        answer = start(client, lab, body)
        assert answer.status_code == 422, (body, answer.get_json())
    assert client.get("/api/test-runs").get_json()["items"] == []


def test_the_queue_is_documented(client):
    spec = client.get("/api/openapi.json").get_json()
    assert "/api/queue" in spec["paths"]
    start_body = spec["components"]["schemas"]["StartTestRun"]["properties"]
    assert {"device_requests", "when_busy", "priority", "queue_timeout_s"} <= set(start_body)


def test_the_workers_scheduler_duty_books_what_a_missed_pass_left_free(client, lab, container):
    from entrypoints.worker import build_worker

    meter = lab["devices"][0]
    first = start(client, lab, {"device_ids": [meter["id"]]}).get_json()
    waiting = start(client, lab, {"device_ids": [meter["id"]]}).get_json()
    # the run ends without the pass that follows it (as if its process died right after)
    with container.uow() as uow:
        run = uow.test_runs.get(first["id"])
        devices = uow.devices.get_many_for_update([meter["id"]])
        run.abort(run.created_at, "test")
        devices[0].release(run.id, run.created_at, "test")
        uow.test_runs.update(run)
        uow.devices.update(devices[0])
        uow.commit()
    assert client.get(f"/api/test-runs/{waiting['id']}").get_json()["status"] == "waiting"

    scheduler = next(d for d in build_worker(container).duties if d.name == "scheduler")
    assert scheduler.action() == [f"started {waiting['id']}"]

    assert client.get(f"/api/test-runs/{waiting['id']}").get_json()["status"] == "queued"
