"""A health check end to end, as deployed in embedded mode: API, worker and the reference
runner in simulation as separate processes. The worker starts the designated check on the
device by itself; the check fails (its test case's criteria contradict each other), the device goes
bad and a normal run on it waits, booking nothing, until an engineer clears the device; then
the run gets the device and completes."""

from __future__ import annotations

import time

import pytest

from tests.support.deployment import Deployment


@pytest.fixture
def embedded(tmp_path):
    deployment = Deployment(
        tmp_path,
        DEVICELAB_HEALTH_CHECK_INTERVAL_S="0.5",
        DEVICELAB_SCHEDULER_INTERVAL_S="0.5",
    )
    deployment.start(runners=1)
    yield deployment
    deployment.stop()


def _created(deployment, path, body):
    status, answer = deployment.request("POST", path, body)
    assert status == 201, answer
    return answer


def test_a_failing_health_check_keeps_the_device_from_normal_runs_until_cleared(embedded):
    meter = _created(embedded, "/api/devices", {"name": "meter-hc", "model": "EM-340"})
    probe = _created(
        embedded,
        "/api/test-cases",
        {
            "name": "self test",
            # no value meets both: the simulated device always fails it
            "criteria": [
                {"metric": "voltage", "condition": "<=", "threshold": 200},
                {"metric": "voltage", "condition": ">=", "threshold": 250},
            ],
            "duration_s": 1,
            "timeout_s": 60,
        },
    )
    case = _created(
        embedded,
        "/api/test-cases",
        {
            "name": "voltage",
            "criteria": [{"metric": "voltage", "condition": "<=", "threshold": 240}],
            "duration_s": 1,
            "timeout_s": 60,
        },
    )
    environment = _created(embedded, "/api/environments", {"name": "bench"})
    _created(
        embedded,
        "/api/health-checks",
        {
            "name": "EM-340 self test",
            "test_case_id": probe["id"],
            "environment_id": environment["id"],
            "model": "EM-340",
            "every_hours": 24,
        },
    )

    deadline, checks = time.monotonic() + 30, []
    while not checks and time.monotonic() < deadline:
        checks = embedded.request("GET", "/api/test-runs?purpose=health_check")[1]["items"]
        time.sleep(0.05)
    assert checks, embedded.tail("worker")
    (check,) = checks
    done = embedded.wait_for(check["id"], {"completed", "failed"})
    assert (done["status"], done["verdict"], done["purpose"]) == (
        "completed",
        "fail",
        "health_check",
    )
    device = embedded.request("GET", f"/api/devices/{meter['id']}")[1]
    assert (device["status"], device["health"]) == ("available", "bad")
    assert device["health_note"]["run_id"] == check["id"]

    run = _created(
        embedded,
        "/api/test-runs",
        {
            "test_case_ids": [case["id"]],
            "environment_id": environment["id"],
            "device_ids": [meter["id"]],
        },
    )
    assert run["status"] == "waiting"
    time.sleep(2)  # several scheduler passes of the worker
    assert embedded.request("GET", f"/api/test-runs/{run['id']}")[1]["status"] == "waiting"
    queue = embedded.request("GET", "/api/queue")[1]
    assert any(meter["id"] in str(entry) and "bad" in str(entry) for entry in queue["items"]), queue
    # only one check per device at a time, and none again before it is due
    assert len(embedded.request("GET", "/api/test-runs?purpose=health_check")[1]["items"]) == 1

    status, cleared = embedded.request(
        "POST", f"/api/devices/{meter['id']}/health/clear", {"reason": "probe replaced"}
    )
    assert (status, cleared["health"]) == (200, "unknown"), cleared
    finished = embedded.wait_for(run["id"], {"completed", "failed"})
    assert finished["status"] == "completed", finished
    assert finished["purpose"] == "normal"
