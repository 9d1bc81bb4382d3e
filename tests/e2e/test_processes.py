"""devicelab as separate processes, the way it is deployed: API (gunicorn), worker and
reference runners, talking through the database and the broker. A run started over HTTP
must complete by itself, a cancelled run must free its devices at once, and a runner killed
mid-job must not leave a device held.

Embedded mode (SQLite + the SQLAlchemy broker transport) always runs; the PostgreSQL +
RabbitMQ topology (api, worker and two runners) runs where those servers answer."""

from __future__ import annotations

import uuid

import pytest

from tests.support.deployment import Deployment


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
def production(tmp_path, empty_postgres_url, rabbitmq_url):
    suffix = uuid.uuid4().hex[:8]
    deployment = Deployment(
        tmp_path,
        DEVICELAB_DATABASE_URL=empty_postgres_url,
        DEVICELAB_BROKER_URL=rabbitmq_url,
        DEVICELAB_EXCHANGE=f"e2e.{suffix}",
        DEVICELAB_JOB_QUEUE=f"e2e.{suffix}.jobs",
        DEVICELAB_DEAD_LETTER_QUEUE=f"e2e.{suffix}.dead",
        DEVICELAB_CONTROL_EXCHANGE=f"e2e.{suffix}.control",
        DEVICELAB_PROGRESS_LEASE_S="2",
    )
    deployment.start(runners=2)
    yield deployment
    deployment.stop()
    from kombu import Connection

    with Connection(rabbitmq_url) as connection:
        channel = connection.channel()
        for queue in (f"e2e.{suffix}.jobs", f"e2e.{suffix}.dead"):
            channel.queue_delete(queue)
        for exchange in (f"e2e.{suffix}", f"e2e.{suffix}.control"):
            channel.exchange_delete(exchange)


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_postgres_rabbitmq_api_worker_and_two_runners(production):
    lab = production.make_lab(devices=8, duration_s=1)
    runs = [production.start_run(lab, [device]) for device in lab["devices"][:6]]
    finished = [production.wait_for(r["id"], {"completed", "failed"}) for r in runs]
    assert [r["status"] for r in finished] == ["completed"] * 6
    assert production.device_statuses(lab["devices"][:6]) == ["available"] * 6

    # a runner killed mid-job: the job is redelivered or the run expires; either way its
    # devices are freed exactly once
    slow_case = production.make_lab(devices=0, duration_s=6, timeout_s=8)["case"]
    slow = production.start_run(lab, lab["devices"][6:8], case=slow_case)
    running = production.wait_for(slow["id"], {"running"})
    production.kill(running["runner"])
    ended = production.wait_for(slow["id"], {"completed", "failed"}, within_s=60)
    if ended["status"] == "failed":
        assert ended["failure_reason"] == "timeout"
    assert production.device_statuses(lab["devices"][6:8]) == ["available", "available"]
    for device in lab["devices"][6:8]:
        assert production.releases(device, slow["id"]) == 1
