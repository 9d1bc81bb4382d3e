"""The runner registry through the REST API, on every backend (tests/e2e/conftest.py): runners
registered by their callbacks (old runners that say nothing about themselves too), GET
/api/runners and /api/runners/{id}, drain and undrain by admins only, the drained runner's
next claim refused with 409 run_claimed / reason runner_drained, and the 4xx answers."""

from __future__ import annotations

RUNNER_KEYS = {
    "id",
    "host",
    "version",
    "executors",
    "state",
    "busy",
    "current_run_ids",
    "first_seen_at",
    "last_seen_at",
    "runs_done",
    "failures",
    "drained",
    "drained_by",
    "drained_at",
    "drain_reason",
}
ABOUT = {"host": "bench-pc-3", "version": "0.1.0", "executors": ["command", "simulate"]}


def start(client, lab, device):
    answer = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [device["id"]],
        },
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_a_runner_registers_with_its_started_report(client, lab, report):
    run = start(client, lab, lab["devices"][0])
    assert report(run["id"], "started", {"runner": "r1", **ABOUT}).status_code == 200

    listing = client.get("/api/runners")
    assert listing.status_code == 200
    (runner,) = listing.get_json()["items"]
    assert set(runner) == RUNNER_KEYS
    assert {k: runner[k] for k in ABOUT} == ABOUT
    assert runner["state"] == "online" and runner["busy"] is True
    assert runner["current_run_ids"] == [run["id"]]
    assert (runner["runs_done"], runner["failures"], runner["drained"]) == (0, 0, False)

    done = report(run["id"], "failed", {"reason": "PSU silent"})
    assert done.status_code == 200
    detail = client.get("/api/runners/r1").get_json()
    assert set(detail) == RUNNER_KEYS | {"recent_runs"}
    assert (detail["runs_done"], detail["failures"], detail["busy"]) == (1, 1, False)
    (recent,) = detail["recent_runs"]
    assert (recent["id"], recent["status"], recent["failure_reason"]) == (
        run["id"],
        "failed",
        "PSU silent",
    )


def test_an_older_runner_that_says_nothing_about_itself_still_works(client, lab, report):
    run = start(client, lab, lab["devices"][0])
    assert report(run["id"], "started", {"runner": "old-1"}).status_code == 200
    assert report(run["id"], "progress", {"runner": "old-1", "progress": 0.5}).status_code == 200
    runner = client.get("/api/runners/old-1").get_json()
    assert (runner["host"], runner["version"], runner["executors"]) == ("", "", [])


def test_what_a_runner_says_about_itself_is_checked(client, lab, report):
    run = start(client, lab, lab["devices"][0])
    for body in (
        {"host": "h" * 201},
        {"version": 3},
        {"executors": "simulate"},
        {"executors": [""]},
        {"executors": ["e"] * 21},
    ):
        answer = report(run["id"], "started", {"runner": "r1", **body})
        assert answer.status_code == 422, body
    assert client.get("/api/runners").get_json()["items"] == []


def test_unknown_and_odd_ids_are_404(client):
    assert client.get("/api/runners/a%2Fb").status_code == 404  # no id has a slash
    assert client.get("/api/runners/%00").status_code == 422  # the house's NUL rule
    for runner_id in ("nobody", "x" * 300, "%E2%80%AE"):
        assert client.get(f"/api/runners/{runner_id}").status_code == 404
        drain = client.post(f"/api/runners/{runner_id}/drain", json={})
        assert drain.status_code == 404
        assert drain.get_json()["code"] == "not_found"
        assert client.delete(f"/api/runners/{runner_id}/drain").status_code == 404


def test_only_admins_drain_and_everyone_signed_in_reads(client, signed_in, anonymous, lab, report):
    run = start(client, lab, lab["devices"][0])
    report(run["id"], "started", {"runner": "r1"})
    engineer, viewer = signed_in("engineer"), signed_in("viewer")
    assert viewer.get("/api/runners").status_code == 200
    assert viewer.get("/api/runners/r1").status_code == 200
    for caller in (engineer, viewer):
        refused = caller.post("/api/runners/r1/drain", json={})
        assert refused.status_code == 403
        assert "admin" in refused.get_json()["message"]
        assert caller.delete("/api/runners/r1/drain").status_code == 403
    assert anonymous.get("/api/runners").status_code == 401
    assert anonymous.post("/api/runners/r1/drain", json={}).status_code == 401
    assert client.get("/api/runners/r1").get_json()["drained"] is False


def test_a_drained_runner_is_refused_a_new_run_and_another_takes_it(client, lab, report):
    first = start(client, lab, lab["devices"][0])
    report(first["id"], "started", {"runner": "r1"})

    drained = client.post("/api/runners/r1/drain", json={"reason": "bench PC update"})
    assert drained.status_code == 200
    body = drained.get_json()
    assert body["drained"] is True and body["drained_by"] == "admin@lab.example"
    assert body["drain_reason"] == "bench PC update" and body["drained_at"]

    second = start(client, lab, lab["devices"][1])
    refused = report(second["id"], "started", {"runner": "r1"})
    assert refused.status_code == 409
    error = refused.get_json()
    assert (error["code"], error["reason"]) == ("run_claimed", "runner_drained")
    assert "drained" in error["message"] and "retry_after" not in error
    assert "Retry-After" not in refused.headers
    assert report(second["id"], "started", {"runner": "r2"}).status_code == 200

    # the run it has goes on
    progress = report(first["id"], "progress", {"runner": "r1", "progress": 0.5})
    assert progress.status_code == 200

    undrained = client.delete("/api/runners/r1/drain")
    assert undrained.status_code == 200 and undrained.get_json()["drained"] is False
    third = start(client, lab, lab["devices"][2])
    assert report(third["id"], "started", {"runner": "r1"}).status_code == 200


def test_bad_drain_bodies_are_422(client, lab, report):
    run = start(client, lab, lab["devices"][0])
    report(run["id"], "started", {"runner": "r1"})
    for body in ({"reason": "x" * 501}, {"reason": 5}, ["not", "an", "object"]):
        answer = client.post("/api/runners/r1/drain", json=body)
        assert answer.status_code == 422, body
    assert client.get("/api/runners/r1").get_json()["drained"] is False
