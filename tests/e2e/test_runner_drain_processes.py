"""Draining a runner with devicelab as separate processes (API, worker, reference runners):
the drained runner finishes the run it has, gets no new job while an undrained runner does
(it gives back any job it takes and logs why), and takes jobs again once undrained. On the
embedded broker it learns of the drain from its next claim and of the undrain by asking again
after DEVICELAB_RUNNER_DRAIN_PROBE_S; on RabbitMQ the control exchange tells it at once."""

from __future__ import annotations

import signal
import time

import pytest

from tests.support.deployment import Deployment, on_rabbitmq


def _wait_for_log(deployment: Deployment, name: str, text: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if text in deployment.tail(name, 400):
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never logged {text!r}:\n{deployment.tail(name, 60)}")


def _drain_while_another_runner_works(deployment: Deployment, told_at_once: bool) -> None:
    lab = deployment.make_lab(devices=3, duration_s=3, timeout_s=60)
    # the first run lasts, so the runner is drained while it has it; for the later runs only
    # which runner takes them matters, not how long they take
    quick_case = deployment.make_lab(devices=0, duration_s=0, timeout_s=60)["case"]
    deployment.spawn("first", "runner", "--runner-id", "first")
    slow = deployment.start_run(lab, lab["devices"][:1])
    assert deployment.wait_for(slow["id"], {"running"})["runner"] == "first"

    status, drained = deployment.request("POST", "/api/runners/first/drain", {"reason": "e2e"})
    assert status == 200 and drained["drained"] is True and drained["busy"] is True
    if told_at_once:
        _wait_for_log(deployment, "first", "runner first is drained (an admin said so: e2e)")
    # the run it has finishes normally
    done = deployment.wait_for(slow["id"], {"completed", "failed"})
    assert done["status"] == "completed" and done["runner"] == "first", done
    # a job started while the drained runner is the only one waits: on the embedded broker
    # the runner takes it, is refused the claim, gives it back and says why
    waiting = deployment.start_run(lab, lab["devices"][1:2], case=quick_case)
    if not told_at_once:
        _wait_for_log(deployment, "first", "runner first is drained (")
    time.sleep(1)
    status, still = deployment.request("GET", f"/api/test-runs/{waiting['id']}")
    assert status == 200 and still["status"] in {"queued", "waiting"}, still
    # every job goes to an undrained runner once there is one, the waiting one first
    deployment.spawn("second", "runner", "--runner-id", "second")
    done = deployment.wait_for(waiting["id"], {"completed", "failed"})
    assert done["status"] == "completed" and done["runner"] == "second", done
    for device in lab["devices"][2:]:
        run = deployment.start_run(lab, [device], case=quick_case)
        done = deployment.wait_for(run["id"], {"completed", "failed"})
        assert done["status"] == "completed" and done["runner"] == "second", done
    status, first = deployment.request("GET", "/api/runners/first")
    assert status == 200 and first["drained"] is True and first["runs_done"] == 1

    status, _ = deployment.request("DELETE", "/api/runners/first/drain")
    assert status == 200
    deployment.kill("second", signal.SIGTERM)
    again = deployment.start_run(lab, lab["devices"][:1], case=quick_case)
    done = deployment.wait_for(again["id"], {"completed", "failed"}, within_s=60)
    assert done["status"] == "completed" and done["runner"] == "first", done
    assert "runner first is no longer drained" in deployment.tail("first", 400)


def test_embedded_a_drained_runner_gets_no_new_job(tmp_path):
    deployment = Deployment(tmp_path, DEVICELAB_RUNNER_DRAIN_PROBE_S="3")
    deployment.start(runners=0)
    try:
        _drain_while_another_runner_works(deployment, told_at_once=False)
    finally:
        deployment.stop()


@pytest.fixture
def on_rabbitmq_and_postgres(tmp_path, empty_postgres_url, rabbitmq_url):
    # a long probe time: on RabbitMQ the undrain must come through the control exchange
    yield from on_rabbitmq(
        tmp_path, empty_postgres_url, rabbitmq_url, 0, DEVICELAB_RUNNER_DRAIN_PROBE_S="600"
    )


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_rabbitmq_a_drained_runner_is_told_on_the_control_exchange(on_rabbitmq_and_postgres):
    _drain_while_another_runner_works(on_rabbitmq_and_postgres, told_at_once=True)
