"""Test plans through the REST API, on every backend (tests/e2e/conftest.py): the contract of
/api/plans and /api/plan-runs, the 403/404/422 answers, and end to end the new-firmware
trigger: a heartbeat through the HTTP endpoint with a new version, then the worker's test
plans duty, starts the plan on that device; the runner's result settles the plan run."""

from __future__ import annotations

import pytest

from entrypoints.worker import _plan_pass

PLAN_KEYS = {
    "id",
    "name",
    "version",
    "test_case_ids",
    "environment_ids",
    "device_ids",
    "device_requests",
    "models",
    "parameters",
    "priority",
    "triggers",
    "created_at",
    "updated_at",
}
PLAN_RUN_KEYS = {
    "id",
    "plan_id",
    "plan",
    "cause",
    "runs",
    "skipped",
    "progress",
    "verdict",
    "created_at",
    "finished_at",
}


def define(client, lab, **body):
    return client.post(
        "/api/plans",
        json={
            "name": "nightly",
            "test_case_ids": [c["id"] for c in lab["cases"]],
            "environment_id": lab["environment"]["id"],
            **body,
        },
    )


def test_define_read_edit_start_and_delete_a_plan(client, lab):
    meter = lab["devices"][0]
    made = define(
        client,
        lab,
        device_ids=[meter["id"]],
        triggers=[{"kind": "cron", "cron": "0 2 * * *", "timezone": "Europe/Berlin"}],
    )
    assert made.status_code == 201, made.get_json()
    plan = made.get_json()
    assert set(plan) == PLAN_KEYS
    assert plan["environment_ids"] == [lab["environment"]["id"]]
    assert plan["triggers"] == [{"kind": "cron", "cron": "0 2 * * *", "timezone": "Europe/Berlin"}]
    assert client.get(f"/api/plans/{plan['id']}").get_json() == plan

    edited = client.patch(f"/api/plans/{plan['id']}", json={"priority": "high"}).get_json()
    assert (edited["version"], edited["priority"]) == (2, "high")

    started = client.post(f"/api/plans/{plan['id']}/start")
    assert started.status_code == 201, started.get_json()
    plan_run = started.get_json()
    assert set(plan_run) == PLAN_RUN_KEYS
    assert plan_run["cause"]["kind"] == "manual"
    assert plan_run["cause"]["by"] == "admin@lab.example"
    assert plan_run["plan"]["version"] == 2
    (run,) = plan_run["runs"]
    assert run["status"] in ("queued", "waiting") and run["environment_name"] == "bench"
    assert plan_run["progress"]["total"] == 1 and plan_run["verdict"] is None
    one_run = client.get(f"/api/test-runs/{run['run_id']}").get_json()
    assert one_run["priority"] == "high" and one_run["requested_device_ids"] == [meter["id"]]

    listed = client.get("/api/plans").get_json()["items"]
    assert [p["id"] for p in listed] == [plan["id"]]
    assert [r["id"] for r in listed[0]["last_runs"]] == [plan_run["id"]]
    runs = client.get(f"/api/plan-runs?plan_id={plan['id']}").get_json()["items"]
    assert [r["id"] for r in runs] == [plan_run["id"]]

    assert client.delete(f"/api/plans/{plan['id']}").status_code == 204
    assert client.get(f"/api/plans/{plan['id']}").status_code == 404
    # the plan run stays, with the plan as it was
    kept = client.get(f"/api/plan-runs/{plan_run['id']}").get_json()
    assert kept["plan"]["name"] == "nightly"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"triggers": [{"kind": "cron", "cron": "0 25 * * *"}]}, "cron"),
        (
            {"triggers": [{"kind": "cron", "cron": "0 2 * * *", "timezone": "Nowhere/X"}]},
            "timezone",
        ),
        ({"triggers": [{"kind": "weekly"}]}, "triggers"),
        ({"test_case_ids": ["no-such-case"]}, "test_case_ids"),
        ({"device_ids": []}, "device_ids"),
        ({"device_ids": ["no-such-device"]}, "device_ids"),
        ({"environment_id": "no-such-environment"}, "environment_ids"),
        ({"priority": "urgent"}, "priority"),
        ({"models": ["a", "a"]}, "models"),
    ],
)
def test_bad_plans_get_422_naming_the_field(client, lab, body, field):
    body = {"device_ids": [lab["devices"][0]["id"]], **body}
    answer = define(client, lab, **body)
    assert answer.status_code == 422, answer.get_json()
    error = answer.get_json()
    assert error["code"] in ("validation_error", "invalid_value")
    assert field in str(error["errors"]), error


def test_a_plan_needs_environments_and_a_unique_name(client, lab):
    meter = lab["devices"][0]["id"]
    answer = client.post(
        "/api/plans",
        json={"name": "x", "test_case_ids": [lab["cases"][0]["id"]], "device_ids": [meter]},
    )
    assert answer.status_code == 422 and "environment_ids" in answer.get_json()["errors"]
    assert define(client, lab, device_ids=[meter]).status_code == 201
    assert define(client, lab, name="NIGHTLY", device_ids=[meter]).status_code == 409


def test_viewers_read_plans_but_may_not_define_or_start_them(client, lab, signed_in):
    plan = define(client, lab, device_ids=[lab["devices"][0]["id"]]).get_json()
    viewer = signed_in("viewer")
    assert viewer.get("/api/plans").status_code == 200
    assert define(viewer, lab, name="mine", device_ids=[]).status_code == 403
    assert viewer.post(f"/api/plans/{plan['id']}/start").status_code == 403
    assert viewer.delete(f"/api/plans/{plan['id']}").status_code == 403
    assert client.get("/api/plan-runs/nope").status_code == 404
    assert client.post("/api/plans/nope/start").status_code == 404


def test_a_heartbeat_with_new_firmware_starts_the_plan_on_that_device(
    client, lab, container, report
):
    meter, other = lab["devices"][0], lab["devices"][2]
    plan = define(
        client,
        lab,
        name="on new firmware",
        device_requests=[{"labels": {"bench": "A"}}],
        triggers=[{"kind": "new_firmware"}],
    ).get_json()
    worker_duty = _plan_pass(container)
    assert worker_duty() == []

    # meter-2 is on bench B: outside the selection
    client.post(f"/api/devices/{other['id']}/heartbeat", json={"firmware_version": "2.0"})
    seen = client.post(f"/api/devices/{meter['id']}/heartbeat", json={"firmware_version": "2.0"})
    assert seen.status_code == 200
    (line,) = worker_duty()
    assert "2.0 on meter-0" in line

    (plan_run,) = client.get(f"/api/plan-runs?plan_id={plan['id']}").get_json()["items"]
    assert plan_run["cause"] == {
        "kind": "new_firmware",
        "by": "new firmware",
        "slot": None,
        "device_id": meter["id"],
        "firmware_version": "2.0",
    }
    (entry,) = plan_run["runs"]
    run = client.get(f"/api/test-runs/{entry['run_id']}").get_json()
    assert [d["id"] for d in run["devices"]] == [meter["id"]]
    assert run["devices"][0]["firmware_version"] == "2.0"

    # the same version again: no second plan run
    client.post(f"/api/devices/{meter['id']}/heartbeat", json={"firmware_version": "2.0"})
    assert worker_duty() == []

    # the runner reports; the next pass settles the plan run with its verdict
    results = [
        {
            "test_case_id": case["id"],
            "device_id": meter["id"],
            "measurements": [{"metric": m, "value": 1}],
        }
        for case, m in zip(lab["cases"], ("voltage", "power"), strict=True)
    ]
    assert report(run["id"], "result", {"results": results}).status_code == 200
    (settled,) = worker_duty()
    assert settled.endswith(": pass")
    done = client.get(f"/api/plan-runs/{plan_run['id']}").get_json()
    assert done["verdict"] == "pass" and done["finished_at"] is not None
    assert done["progress"]["finished"] == 1 and done["progress"]["fraction"] == 1.0
    assert client.get("/api/plans").get_json()["items"][0]["last_runs"][0]["verdict"] == "pass"
