"""Fault injection against the real services: the API (gunicorn), the worker and a reference
runner as separate processes on PostgreSQL and RabbitMQ, all on 127.0.0.1.

Each test breaks one thing, bounded in time, and puts it back whatever happens:
- RabbitMQ unreachable (a TCP proxy between devicelab and the broker is cut) while runs start
  over HTTP: the starts succeed without hanging, and every job reaches the runner afterwards;
- the runner frozen (SIGSTOP) past its run's deadline, then thawed (SIGCONT): the run expired,
  the late result is refused with 409, and nothing about the run or its devices changes;
- the API's PostgreSQL connection killed (pg_terminate_backend) in the middle of a start: the
  request fails cleanly with the JSON error shape, leaves nothing behind, and the pool recovers;
- ten identical result callbacks at once over HTTP: one result, each device released once.

(A runner killed with SIGKILL mid-job is tests/e2e/test_processes.py; the relay alone against a
cut broker is tests/integration/test_relay_rabbitmq.py.)

The four tests share one deployment, in this order; each leaves it working for the next."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from adapters.auth.run_credentials import SignedRunCredentials
from tests.support.deployment import Deployment
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

API_APPLICATION_NAME = "devicelab-fault-api"


def _delete_broker_names(rabbitmq_url: str, suffix: str) -> None:
    from kombu import Connection

    with Connection(rabbitmq_url) as connection:
        channel = connection.channel()
        for queue in (f"fault.{suffix}.jobs", f"fault.{suffix}.dead"):
            channel.queue_delete(queue)
        for exchange in (f"fault.{suffix}", f"fault.{suffix}.control"):
            channel.exchange_delete(exchange)


@pytest.fixture(scope="module")
def broker_proxy(rabbitmq_url):
    proxy = TcpProxy("127.0.0.1", 5672).start()
    yield proxy
    proxy.cut()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server, rabbitmq_url, broker_proxy):
    from adapters.persistence.schema import upgrade_schema

    database_url = postgres_server.create_database("faults")
    upgrade_schema(database_url)
    suffix = uuid.uuid4().hex[:8]
    through_proxy = rabbitmq_url.replace("127.0.0.1:5672", f"127.0.0.1:{broker_proxy.port}")
    lab = Deployment(
        tmp_path_factory.mktemp("faults"),
        DEVICELAB_DATABASE_URL=database_url,
        DEVICELAB_BROKER_URL=through_proxy,
        DEVICELAB_EXCHANGE=f"fault.{suffix}",
        DEVICELAB_JOB_QUEUE=f"fault.{suffix}.jobs",
        DEVICELAB_DEAD_LETTER_QUEUE=f"fault.{suffix}.dead",
        DEVICELAB_CONTROL_EXCHANGE=f"fault.{suffix}.control",
        DEVICELAB_PROGRESS_LEASE_S="1",
    )
    lab.database_url = database_url
    # the API's connections name themselves, so a test can find and kill them
    separator = "&" if "?" in database_url else "?"
    api_url = f"{database_url}{separator}application_name={API_APPLICATION_NAME}"
    try:
        lab.start(runners=1, api_env={"DEVICELAB_DATABASE_URL": api_url})
        lab.lab = lab.make_lab(devices=6, duration_s=0)
        yield lab
    finally:
        lab.stop()
        _delete_broker_names(rabbitmq_url, suffix)
        postgres_server.drop_database(database_url)


@pytest.fixture
def sql(deployment):
    engine = sa.create_engine(deployment.database_url, poolclass=NullPool)
    yield lambda query, **params: _rows(engine, query, params)
    engine.dispose()


def _rows(engine: sa.Engine, query: str, params: dict) -> list:
    with engine.connect() as connection:
        return connection.execute(sa.text(query), params).all()


def _history_len(deployment: Deployment, device_id: str) -> int:
    return len(deployment.request("GET", f"/api/devices/{device_id}/history")[1])


def test_broker_unreachable_while_runs_start_over_http(deployment, broker_proxy, sql):
    lab = deployment.lab
    broker_proxy.cut()
    try:
        started = []
        for device in lab["devices"][:4]:
            # a hanging request would raise its 10 s timeout here
            started.append(deployment.start_run(lab, [device]))
        waiting = sql(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND run_id IN :ids",
            ids=tuple(r["id"] for r in started),
        )
        assert waiting[0][0] == 4  # the jobs wait in the outbox ...
        assert all(
            deployment.request("GET", f"/api/test-runs/{r['id']}")[1]["status"] == "queued"
            for r in started
        )
    finally:
        broker_proxy.restore()
    # ... and every one reaches the runner once the broker is back
    finished = [deployment.wait_for(r["id"], {"completed", "failed"}, 120) for r in started]
    assert [r["status"] for r in finished] == ["completed"] * 4
    assert all(r["runner"] == "runner-0" for r in finished)
    assert deployment.device_statuses(lab["devices"][:4]) == ["available"] * 4
    unsent = sql("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    assert unsent[0][0] == 0


def test_paused_runner_past_its_deadline_gets_409_and_changes_nothing(deployment):
    lab = deployment.lab
    slow_case = deployment.make_lab(devices=0, duration_s=4, timeout_s=4)["case"]
    devices = lab["devices"][:2]
    run = deployment.start_run(lab, devices, case=slow_case)
    running = deployment.wait_for(run["id"], {"running"}, 60)
    deployment.pause(running["runner"])
    try:
        expired = deployment.wait_for(run["id"], {"completed", "failed", "aborted"}, 60)
        assert expired["status"] == "failed" and expired["failure_reason"] == "timeout"
        assert deployment.device_statuses(devices) == ["available", "available"]
        histories = [_history_len(deployment, d) for d in devices]

        # what the runner will send when it wakes up, sent first by hand: refused
        token = SignedRunCredentials(deployment.env["DEVICELAB_SECRET_KEY"]).issue(
            run["id"], datetime.now(UTC) + timedelta(hours=1)
        )
        late = {
            "results": [
                {
                    "test_case_id": slow_case,
                    "device_id": d,
                    "measurements": [{"metric": "voltage", "value": 230}],
                }
                for d in devices
            ]
        }
        status, body = deployment.request(
            "POST",
            f"/api/runner/test-runs/{run['id']}/result",
            late,
            auth=False,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert status == 409, body
    finally:
        deployment.resume(running["runner"])

    # the thawed runner reports late, gets 409, drops the job and takes the next one
    follow_up = deployment.start_run(lab, devices)
    assert deployment.wait_for(follow_up["id"], {"completed"}, 60)["status"] == "completed"
    after = deployment.request("GET", f"/api/test-runs/{run['id']}")[1]
    assert after == expired
    for device, before in zip(devices, histories, strict=True):
        assert deployment.releases(device, run["id"]) == 1
        # the follow-up run reserved and released once; nothing else happened
        assert _history_len(deployment, device) == before + 2
    # the runner heard the 409 on its next report (progress or result) and dropped the job
    log = deployment.tail(running["runner"], lines=400)
    assert f"run {run['id']}: nothing left to do" in log or f"run {run['id']} stopped:" in log


def test_database_connection_killed_mid_request(deployment, sql):
    lab = deployment.lab
    device = lab["devices"][5]
    runs_before = sql("SELECT count(*) FROM test_runs")[0][0]
    bookings_before = sql("SELECT count(*) FROM test_run_devices WHERE device_id = :d", d=device)
    history_before = _history_len(deployment, device)
    locker = sa.create_engine(deployment.database_url, poolclass=NullPool)
    outcome: dict = {}

    def start() -> None:
        outcome["answer"] = deployment.request(
            "POST",
            "/api/test-runs",
            {"test_case_ids": [lab["case"]], "environment_id": lab["env"], "device_ids": [device]},
            timeout_s=30,
        )

    with locker.connect() as connection:
        transaction = connection.begin()
        # hold the device's row so the start stops in the middle of its transaction
        connection.execute(
            sa.text("SELECT id FROM devices WHERE id = :id FOR UPDATE"), {"id": device}
        )
        request = threading.Thread(target=start)
        request.start()
        try:
            victims: list = []
            deadline = time.monotonic() + 15
            while not victims and time.monotonic() < deadline:
                victims = sql(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
                    "AND wait_event_type = 'Lock'",
                    name=API_APPLICATION_NAME,
                )
                time.sleep(0.05)
            assert len(victims) == 1, "the start never waited for the device's row"
            sql("SELECT pg_terminate_backend(:pid)", pid=victims[0][0])
        finally:
            transaction.rollback()
        request.join(timeout=40)
    locker.dispose()
    assert not request.is_alive(), "the request hung"

    status, body = outcome["answer"]
    if status == 201:  # a retry on a new connection is fine too, if it booked exactly once
        assert deployment.releases(device, body["id"]) == 0
        assert sql("SELECT count(*) FROM test_runs")[0][0] == runs_before + 1
        deployment.request("POST", f"/api/test-runs/{body['id']}/cancel", {})
    else:
        assert status >= 500, body
        assert set(body) >= {"code", "message", "errors"}, body
        # nothing of the failed transaction is left
        assert sql("SELECT count(*) FROM test_runs")[0][0] == runs_before
        assert deployment.device_statuses([device]) == ["available"]
        assert _history_len(deployment, device) == history_before
        assert (
            sql("SELECT count(*) FROM test_run_devices WHERE device_id = :d", d=device)
            == bookings_before
        )

    # the pool recovers, even after every connection it holds has been killed
    sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name",
        name=API_APPLICATION_NAME,
    )
    for _ in range(12):  # more than one pooled connection's worth of requests
        status, page = deployment.request("GET", "/api/devices?limit=50")
        assert status == 200, page
    run = deployment.start_run(lab, [device])
    assert deployment.wait_for(run["id"], {"completed"}, 60)["status"] == "completed"


def test_ten_identical_result_callbacks_at_once(deployment):
    lab = deployment.lab
    slow_case = deployment.make_lab(devices=0, duration_s=30, timeout_s=60)["case"]
    devices = lab["devices"][2:4]
    run = deployment.start_run(lab, devices, case=slow_case)
    deployment.wait_for(run["id"], {"running"}, 60)  # the runner is on it, heartbeating
    token = SignedRunCredentials(deployment.env["DEVICELAB_SECRET_KEY"]).issue(
        run["id"], datetime.now(UTC) + timedelta(hours=1)
    )
    result = {
        "results": [
            {
                "test_case_id": slow_case,
                "device_id": d,
                "measurements": [{"metric": "voltage", "value": 230 + n, "unit": "V"}],
            }
            for n, d in enumerate(devices)
        ]
    }
    barrier = threading.Barrier(10)
    answers: list = []

    def post() -> None:
        barrier.wait(timeout=30)
        answers.append(
            deployment.request(
                "POST",
                f"/api/runner/test-runs/{run['id']}/result",
                result,
                auth=False,
                headers={"Authorization": f"Bearer {token}"},
                timeout_s=30,
            )
        )

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 10
    accepted = [body for status, body in answers if status == 200]
    # a lost race is a clean, retryable conflict; nothing else
    assert all(
        status == 200 or (status == 409 and body["code"] == "concurrent_update")
        for status, body in answers
    ), answers
    assert sum(1 for body in accepted if body["changed"]) == 1
    released = [d for body in accepted for d in body["released_device_ids"]]
    assert sorted(released) == sorted(devices)
    done = deployment.request("GET", f"/api/test-runs/{run['id']}")[1]
    assert done["status"] == "completed" and len(done["results"]) == 2
    assert done["verdict"] == "pass"
    for device in devices:
        assert deployment.releases(device, run["id"]) == 1
    assert deployment.device_statuses(devices) == ["available", "available"]
