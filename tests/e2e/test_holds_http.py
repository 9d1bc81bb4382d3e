"""Holds through the REST API, on every backend (tests/e2e/conftest.py): the contract of
POST/GET/DELETE /api/holds and POST /api/holds/{id}/extend, the device's `held` status and
`hold` note, holds in GET /api/queue beside runs, and the 403/404/409/422 answers."""

from __future__ import annotations

from datetime import datetime

HOLD_KEYS = {
    "id",
    "status",
    "holder",
    "reason",
    "priority",
    "duration_s",
    "device_ids",
    "device_requests",
    "devices",
    "created_at",
    "started_at",
    "expires_at",
    "ended_at",
    "ended_by",
    "end_reason",
    "position",
    "estimated_start_at",
    "waiting_for",
    "version",
}


def place(client, body):
    return client.post("/api/holds", json={"duration_s": 3600, "reason": "re-flash", **body})


def start(client, lab, device_ids, **body):
    return client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": device_ids,
            **body,
        },
    )


def test_a_hold_on_a_free_device_is_active_and_the_device_shows_it(client, lab):
    meter = lab["devices"][0]
    answer = place(client, {"device_ids": [meter["id"]], "reason": "re-flash by hand"})
    assert answer.status_code == 201, answer.get_json()
    hold = answer.get_json()
    assert set(hold) == HOLD_KEYS
    assert hold["status"] == "active" and hold["holder"] == "admin@lab.example"
    assert hold["devices"] == [
        {"id": meter["id"], "name": meter["name"], "model": meter["model"], "role": None}
    ]
    assert hold["device_ids"] == [meter["id"]] and hold["priority"] == "normal"
    started = datetime.fromisoformat(hold["started_at"])
    assert (datetime.fromisoformat(hold["expires_at"]) - started).total_seconds() == 3600
    assert hold["position"] is None and hold["end_reason"] is None

    device = client.get(f"/api/devices/{meter['id']}").get_json()
    assert device["status"] == "held"
    assert device["hold"] == {
        "id": hold["id"],
        "holder": "admin@lab.example",
        "until": hold["expires_at"],
        "reason": "re-flash by hand",
    }
    held = client.get("/api/devices?status=held").get_json()["items"]
    assert [d["id"] for d in held] == [meter["id"]]
    assert client.get(f"/api/holds/{hold['id']}").get_json()["id"] == hold["id"]

    released = client.delete(f"/api/holds/{hold['id']}")
    assert released.status_code == 200
    body = released.get_json()
    assert (body["status"], body["end_reason"], body["ended_by"]) == (
        "ended",
        "released",
        "admin@lab.example",
    )
    device = client.get(f"/api/devices/{meter['id']}").get_json()
    assert (device["status"], device["hold"]) == ("available", None)
    again = client.delete(f"/api/holds/{hold['id']}")
    assert again.status_code == 409, again.get_json()


def test_holds_wait_in_the_queue_with_runs_and_start_when_devices_free_up(client, lab):
    meter = lab["devices"][0]
    run = start(client, lab, [meter["id"]]).get_json()
    answer = place(client, {"device_ids": [meter["id"]]})
    assert answer.status_code == 201
    hold = answer.get_json()
    assert hold["status"] == "waiting" and hold["devices"] == []
    assert hold["started_at"] is None and hold["expires_at"] is None
    assert hold["position"] == 1
    assert hold["waiting_for"] == {"devices": {meter["id"]: "busy"}, "requests": []}
    later = start(client, lab, [meter["id"]]).get_json()

    queue = client.get("/api/queue").get_json()["items"]
    assert [(e["position"], e["kind"]) for e in queue] == [(1, "hold"), (2, "run")]
    assert queue[0]["hold"]["id"] == hold["id"] and queue[0]["run"] is None
    assert queue[1]["run"]["id"] == later["id"] and queue[1]["hold"] is None
    waiting = client.get("/api/holds?status=waiting").get_json()["items"]
    assert [(h["id"], h["position"]) for h in waiting] == [(hold["id"], 1)]

    assert client.post(f"/api/test-runs/{run['id']}/cancel", json={}).status_code == 200
    assert client.get(f"/api/holds/{hold['id']}").get_json()["status"] == "active"
    assert client.get(f"/api/test-runs/{later['id']}").get_json()["status"] == "waiting"

    assert client.delete(f"/api/holds/{hold['id']}").status_code == 200
    assert client.get(f"/api/test-runs/{later['id']}").get_json()["status"] == "queued"


def test_a_hold_asked_for_by_kind_and_when_busy_reject(client, lab):
    answer = place(client, {"device_requests": [{"role": "bench", "labels": {"bench": "A"}}]})
    assert answer.status_code == 201, answer.get_json()
    hold = answer.get_json()
    assert [d["role"] for d in hold["devices"]] == ["bench"]
    assert hold["device_requests"] == [
        {"role": "bench", "model": None, "labels": {"bench": "A"}, "count": 1}
    ]
    taken = hold["devices"][0]["id"]
    refused = place(client, {"device_ids": [taken], "when_busy": "reject"})
    assert refused.status_code == 409, refused.get_json()
    assert taken in refused.get_json()["message"]
    assert len(client.get("/api/holds").get_json()["items"]) == 1


def test_extend_a_hold(client, lab):
    meter = lab["devices"][0]
    hold = place(client, {"device_ids": [meter["id"]]}).get_json()
    answer = client.post(f"/api/holds/{hold['id']}/extend", json={"by_s": 1800})
    assert answer.status_code == 200, answer.get_json()
    extended = answer.get_json()
    gained = datetime.fromisoformat(extended["expires_at"]) - datetime.fromisoformat(
        hold["expires_at"]
    )
    assert gained.total_seconds() == 1800
    device = client.get(f"/api/devices/{meter['id']}").get_json()
    assert device["hold"]["until"] == extended["expires_at"]

    too_far = client.post(f"/api/holds/{hold['id']}/extend", json={"by_s": 8 * 3600})
    assert too_far.status_code == 422, too_far.get_json()
    assert client.post(f"/api/holds/{hold['id']}/extend", json={"by_s": 59}).status_code == 422
    client.delete(f"/api/holds/{hold['id']}")
    ended = client.post(f"/api/holds/{hold['id']}/extend", json={"by_s": 600})
    assert ended.status_code == 409, ended.get_json()


def test_only_the_holder_or_an_admin_ends_or_extends_a_hold(client, lab, signed_in):
    meter = lab["devices"][0]
    alice = signed_in("engineer", "alice@lab.example")
    bob = signed_in("engineer", "bob@lab.example")
    viewer = signed_in("viewer")
    hold = place(alice, {"device_ids": [meter["id"]]}).get_json()
    assert hold["holder"] == "alice@lab.example"

    assert bob.delete(f"/api/holds/{hold['id']}").status_code == 403
    assert bob.post(f"/api/holds/{hold['id']}/extend", json={"by_s": 600}).status_code == 403
    assert viewer.delete(f"/api/holds/{hold['id']}").status_code == 403
    assert place(viewer, {"device_ids": [lab["devices"][1]["id"]]}).status_code == 403
    assert viewer.get(f"/api/holds/{hold['id']}").status_code == 200
    assert client.get(f"/api/holds/{hold['id']}").get_json()["status"] == "active"

    assert alice.post(f"/api/holds/{hold['id']}/extend", json={"by_s": 600}).status_code == 200
    ended = client.delete(f"/api/holds/{hold['id']}")  # an admin
    assert ended.status_code == 200
    assert ended.get_json()["ended_by"] == "admin@lab.example"
    mine = client.get("/api/holds?holder=alice@lab.example").get_json()["items"]
    assert [h["id"] for h in mine] == [hold["id"]]


def test_unknown_holds_are_404(client, lab):
    assert client.get("/api/holds/nope").status_code == 404
    assert client.delete("/api/holds/nope").status_code == 404
    assert client.post("/api/holds/nope/extend", json={"by_s": 600}).status_code == 404


def test_bad_holds_are_refused_with_422(client, lab):
    meter = lab["devices"][0]["id"]
    for body in (
        {"device_ids": [meter], "duration_s": 59},
        {"device_ids": [meter], "duration_s": 8 * 3600 + 1},
        {"device_ids": [meter], "duration_s": "long"},
        {"device_ids": [meter], "reason": ""},
        {"device_ids": [meter], "reason": "   "},
        {"device_ids": [meter], "reason": "x" * 501},
        {"device_ids": [meter], "when_busy": "maybe"},
        {"device_ids": [meter], "priority": "urgent"},
        {"device_ids": ["no-such-device"]},
        {"device_requests": [{"labels": {"bench": "Z"}}]},
        {"device_ids": []},
        {"device_ids": [meter, meter]},
    ):
        answer = place(client, body)
        assert answer.status_code == 422, (body, answer.get_json())
    assert client.post("/api/holds", json={"device_ids": [meter]}).status_code == 422
    assert client.get("/api/holds").get_json()["items"] == []
    assert client.get("/api/holds?status=maybe").status_code == 422


def test_holds_are_documented(client):
    spec = client.get("/api/openapi.json").get_json()
    assert {"/api/holds", "/api/holds/{hold_id}", "/api/holds/{hold_id}/extend"} <= set(
        spec["paths"]
    )
    assert "hold" in spec["components"]["schemas"]["Device"]["properties"]
    assert "held" in spec["components"]["schemas"]["Device"]["properties"]["status"]["enum"]


def test_the_workers_hold_expiry_frees_the_device_for_the_queue(client, lab, container):
    from entrypoints.worker import build_worker

    meter = lab["devices"][0]
    hold = place(client, {"device_ids": [meter["id"]], "duration_s": 60}).get_json()
    run = start(client, lab, [meter["id"]]).get_json()
    with container.uow() as uow:  # its time is up (as if 60 s had passed)
        stored = uow.holds.get(hold["id"])
        stored.expires_at = stored.started_at
        uow.holds.update(stored)
        uow.commit()

    expiry = next(d for d in build_worker(container).duties if d.name == "hold expiry")
    assert expiry.action() == [hold["id"]]

    ended = client.get(f"/api/holds/{hold['id']}").get_json()
    assert (ended["status"], ended["end_reason"], ended["ended_by"]) == (
        "ended",
        "expired",
        "reaper",
    )
    assert client.get(f"/api/test-runs/{run['id']}").get_json()["status"] == "queued"


def test_an_admins_run_token_ends_only_its_own_holds_a_full_one_any(app, client, lab, signed_in):
    from tests.e2e.test_api_tokens_http import make_token, token_client

    alice = signed_in("engineer", "alice@lab.example")
    hold = place(alice, {"device_ids": [lab["devices"][0]["id"]]}).get_json()
    ci = token_client(app, make_token(client, "run")["token"])  # the admin's, scope run
    assert ci.delete(f"/api/holds/{hold['id']}").status_code == 403
    assert ci.post(f"/api/holds/{hold['id']}/extend", json={"by_s": 600}).status_code == 403
    own = place(ci, {"device_ids": [lab["devices"][1]["id"]]}).get_json()
    assert ci.delete(f"/api/holds/{own['id']}").status_code == 200
    full = token_client(app, make_token(client, "full")["token"])
    assert full.delete(f"/api/holds/{hold['id']}").status_code == 200
