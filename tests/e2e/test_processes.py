"""devicelab as separate processes, the way it is deployed: API (gunicorn), worker and
reference runners, talking through the database and the broker. A run started over HTTP
must complete by itself, a cancelled run must free its devices at once, and a runner killed
mid-job must not leave a device held: its job runs again, by the same runner restarted (its
stable id gets its run back at once) or by another one once the short claim lease lapsed,
long before the 300 s progress lease would let the reaper fail the run.

On the embedded broker, which never redelivers a killed consumer's message, the worker offers
the job of a run whose claimant fell silent again. Embedded mode (SQLite + the SQLAlchemy
broker transport) always runs; the PostgreSQL +
RabbitMQ topology (api, worker and two runners) runs where those servers answer."""

from __future__ import annotations

import socket

import pytest

from tests.support.deployment import Deployment, on_rabbitmq


@pytest.fixture
def embedded(tmp_path):
    deployment = Deployment(tmp_path)
    deployment.start(runners=1)
    yield deployment
    deployment.stop()


def test_embedded_run_completes_by_itself_and_cancel_frees_devices(embedded):
    lab = embedded.make_lab(devices=3, duration_s=1)
    run = embedded.start_run(lab, lab["devices"][:2])
    done = embedded.wait_for(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["verdict"] in {"pass", "fail"}
    assert len(done["results"]) == 2 and done["runner"] == "runner-0"
    assert all(m["value"] is not None for r in done["results"] for m in r["measurements"])
    assert embedded.device_statuses(lab["devices"][:2]) == ["available", "available"]

    slow_case = embedded.make_lab(devices=0, duration_s=30, timeout_s=120)["case"]
    slow = embedded.start_run(lab, [lab["devices"][2]], case=slow_case)
    embedded.wait_for(slow["id"], {"running"})
    status, cancelled = embedded.request("POST", f"/api/test-runs/{slow['id']}/cancel", {})
    assert status == 200 and cancelled["status"] == "aborted"
    assert embedded.device_statuses([lab["devices"][2]]) == ["available"]

    # the runner notices the cancellation (409 on its next report) and takes the next job
    quick = embedded.start_run(lab, [lab["devices"][2]])
    assert embedded.wait_for(quick["id"], {"completed"}, within_s=30)["status"] == "completed"
    assert embedded.releases(lab["devices"][2], slow["id"]) == 1


@pytest.fixture
def embedded_runnerless(tmp_path):
    """Embedded mode with a 3 s claim lease (so the worker offers a silent claimant's job
    again after 6 s) and the default 300 s progress lease; the test starts its runners."""
    deployment = Deployment(tmp_path, DEVICELAB_CLAIM_LEASE_S="3")
    deployment.start(runners=0)
    yield deployment
    deployment.stop()


def test_embedded_a_runner_killed_mid_job_gets_its_job_offered_again(embedded_runnerless):
    """kombu's SQLAlchemy transport never redelivers a message whose consumer was killed:
    the worker offers the job again, to the same runner restarted or to another one."""
    lab = embedded_runnerless.make_lab(devices=2, duration_s=4, timeout_s=120)
    embedded_runnerless.spawn("first", "runner", "--runner-id", "first")
    run = embedded_runnerless.start_run(lab, lab["devices"][:1])
    assert embedded_runnerless.wait_for(run["id"], {"running"})["runner"] == "first"

    embedded_runnerless.kill("first")
    embedded_runnerless.spawn("restarted", "runner", "--runner-id", "first")
    done = embedded_runnerless.wait_for(run["id"], {"completed", "failed"}, within_s=60)
    assert done["status"] == "completed" and done["verdict"] in {"pass", "fail"}, done
    assert done["runner"] == "first" and len(done["results"]) == 1

    second = embedded_runnerless.start_run(lab, lab["devices"][1:])
    assert embedded_runnerless.wait_for(second["id"], {"running"})["runner"] == "first"
    embedded_runnerless.kill("restarted")
    embedded_runnerless.spawn("other", "runner", "--runner-id", "other")
    taken_over = embedded_runnerless.wait_for(second["id"], {"completed", "failed"}, within_s=60)
    assert taken_over["status"] == "completed" and taken_over["runner"] == "other", taken_over

    worker_log = embedded_runnerless.tail("worker", 400)
    assert f"job re-offer: {run['id']}" in worker_log
    assert f"job re-offer: {second['id']}" in worker_log
    assert embedded_runnerless.device_statuses(lab["devices"]) == ["available", "available"]
    for device, run_id in zip(lab["devices"], (run["id"], second["id"]), strict=True):
        assert embedded_runnerless.releases(device, run_id) == 1


def _production(tmp_path, database_url, rabbitmq_url, runners, **env):
    # a short claim lease (heartbeats every 0.3 s): a silent runner's run is taken over
    # after 3 s
    yield from on_rabbitmq(
        tmp_path, database_url, rabbitmq_url, runners, DEVICELAB_CLAIM_LEASE_S="3", **env
    )


@pytest.fixture
def production(tmp_path, empty_postgres_url, rabbitmq_url):
    yield from _production(
        tmp_path, empty_postgres_url, rabbitmq_url, 2, DEVICELAB_PROGRESS_LEASE_S="2"
    )


@pytest.fixture
def runnerless(tmp_path, postgres_server, rabbitmq_url):
    """API and worker on PostgreSQL (a database of their own) + RabbitMQ; the test starts its
    runners itself. The progress lease is the default 300 s: only a takeover (or a restart)
    gets a crashed runner's run done in time."""
    database_url = postgres_server.create_database("claims")
    yield from _production(tmp_path, database_url, rabbitmq_url, 0)
    postgres_server.drop_database(database_url)


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_postgres_rabbitmq_api_worker_and_two_runners(production):
    lab = production.make_lab(devices=8, duration_s=1)
    runs = [production.start_run(lab, [device]) for device in lab["devices"][:6]]
    finished = [production.wait_for(r["id"], {"completed", "failed"}) for r in runs]
    assert [r["status"] for r in finished] == ["completed"] * 6
    assert production.device_statuses(lab["devices"][:6]) == ["available"] * 6

    # a runner killed mid-job: the other runner gets the redelivered job, is refused while the
    # dead runner's claim is live, takes the run over once it lapsed and completes it; the
    # devices are freed exactly once
    slow_case = production.make_lab(devices=0, duration_s=4, timeout_s=30)["case"]
    slow = production.start_run(lab, lab["devices"][6:8], case=slow_case)
    running = production.wait_for(slow["id"], {"running"})
    production.kill(running["runner"])
    ended = production.wait_for(slow["id"], {"completed", "failed"}, within_s=60)
    assert ended["status"] == "completed" and ended["verdict"] in {"pass", "fail"}, ended
    assert ended["runner"] != running["runner"] and len(ended["results"]) == 2
    assert production.device_statuses(lab["devices"][6:8]) == ["available", "available"]
    for device in lab["devices"][6:8]:
        assert production.releases(device, slow["id"]) == 1


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_a_runner_killed_mid_job_gets_its_run_done_restarted_or_by_another_runner(runnerless):
    lab = runnerless.make_lab(devices=2, duration_s=4, timeout_s=60)
    stable_id = f"{socket.gethostname()}-0"  # no --runner-id: the first free slot
    runnerless.spawn("first", "runner")
    run = runnerless.start_run(lab, lab["devices"][:1])
    running = runnerless.wait_for(run["id"], {"running"})
    assert running["runner"] == stable_id

    # kill -9 and start it again: the same id, so its own run back at once (no lease to wait)
    runnerless.kill("first")
    runnerless.spawn("restarted", "runner")
    done = runnerless.wait_for(run["id"], {"completed", "failed"}, within_s=60)
    assert done["status"] == "completed" and done["verdict"] in {"pass", "fail"}, done
    assert done["runner"] == stable_id and len(done["results"]) == 1
    assert "asking again" not in runnerless.tail("restarted", 200)

    # kill -9 with another runner waiting: it takes the run over once the claim lapsed
    second = runnerless.start_run(lab, lab["devices"][1:])
    assert runnerless.wait_for(second["id"], {"running"})["runner"] == stable_id
    runnerless.spawn("other", "runner", "--runner-id", "other")
    runnerless.kill("restarted")
    taken_over = runnerless.wait_for(second["id"], {"completed", "failed"}, within_s=60)
    assert taken_over["status"] == "completed" and taken_over["runner"] == "other", taken_over
    assert runnerless.device_statuses(lab["devices"]) == ["available", "available"]
    for device, run_id in zip(lab["devices"], (run["id"], second["id"]), strict=True):
        assert runnerless.releases(device, run_id) == 1
