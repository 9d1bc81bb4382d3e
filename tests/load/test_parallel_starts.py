"""Twenty identical starts on one device at the same instant, round after round, through the
API as `devicelab up` runs it on a server (gunicorn with two worker processes, the worker, a
runner; one PostgreSQL database for the lab and the auth store, RabbitMQ): exactly one start
wins each round, every other one gets 409 — never a 500.

Issue 11 saw one 500 among the 409s once, on a machine busy with other work, and no error in
PostgreSQL's log. The session is made to slide every few seconds (a short idle timeout), so
the token check writes now and then while the starts race, as it does in a long-lived lab.
Any answer but 201 or 409 fails the test with its body (a 500 carries a `request_id`) and
the API log's lines about it, where the traceback is.

`make test` runs a few rounds; `make bench` (DEVICELAB_LOAD_LONG=1) many more."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid

import pytest

from tests.support.concurrency import fire_together
from tests.support.deployment import Deployment

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

LONG = os.environ.get("DEVICELAB_LOAD_LONG") == "1"
ROUNDS = int(os.environ.get("DEVICELAB_PARALLEL_START_ROUNDS", "150" if LONG else "8"))
STARTERS = 20


@pytest.fixture
def deployment(tmp_path, empty_postgres_url, rabbitmq_url):
    suffix = uuid.uuid4().hex[:8]
    deployment = Deployment(
        tmp_path,
        DEVICELAB_DATABASE_URL=empty_postgres_url,
        DEVICELAB_BROKER_URL=rabbitmq_url,
        DEVICELAB_EXCHANGE=f"starts.{suffix}",
        DEVICELAB_JOB_QUEUE=f"starts.{suffix}.jobs",
        DEVICELAB_DEAD_LETTER_QUEUE=f"starts.{suffix}.dead",
        DEVICELAB_CONTROL_EXCHANGE=f"starts.{suffix}.control",
        DEVICELAB_WORKERS="2",
        DEVICELAB_SESSION_IDLE_S="60",  # the session slides every 6 s of use
    )
    deployment.start(runners=1)
    yield deployment
    deployment.stop()
    from kombu import Connection

    with Connection(rabbitmq_url) as connection:
        channel = connection.channel()
        for queue in (f"starts.{suffix}.jobs", f"starts.{suffix}.dead"):
            channel.queue_delete(queue)
        for exchange in (f"starts.{suffix}", f"starts.{suffix}.control"):
            channel.exchange_delete(exchange)


def _start(deployment: Deployment, body: dict):
    """(status, body) of one start; the raw text when the body is not JSON."""
    request = urllib.request.Request(
        deployment.base + "/api/test-runs", data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {deployment.token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")


def test_twenty_identical_starts_one_wins_the_rest_get_409(deployment):
    lab = deployment.make_lab(devices=1, duration_s=1)
    labels = {"labels": {"type": "meter", "bench": "A", "rack": "3"}}  # as the demo lab's
    assert deployment.request("PATCH", f"/api/devices/{lab['devices'][0]}", labels)[0] == 200
    body = {
        "test_case_ids": [lab["case"]],
        "environment_id": lab["env"],
        "device_ids": lab["devices"],
        "when_busy": "reject",  # the race of today's 409; waiting runs race in the queue tests
    }
    unexpected: list[str] = []
    for round_number in range(ROUNDS):
        outcomes = fire_together([lambda: _start(deployment, body) for _ in range(STARTERS)])
        failed = [o for o in outcomes if isinstance(o, Exception)]
        assert failed == [], f"round {round_number}: {failed}"
        statuses = sorted(status for status, _ in outcomes)
        for status, answer in outcomes:
            if status not in (201, 409):
                unexpected.append(f"round {round_number}: {status} {answer}")
        winners = [answer for status, answer in outcomes if status == 201]
        if unexpected:
            break
        assert len(winners) == 1, f"round {round_number}: {statuses}"
        run_id = winners[0]["id"]
        status, cancelled = deployment.request("POST", f"/api/test-runs/{run_id}/cancel", {})
        assert status == 200 or cancelled.get("code") == "invalid_transition", cancelled
        deployment.wait_for(run_id, {"aborted", "completed", "failed"})
    if unexpected:
        ids = [
            line.split('"request_id": "')[-1][:16] for line in unexpected if "request_id" in line
        ]
        log = (deployment.logs / "api.log").read_text()
        context = [line for line in log.splitlines() if any(i in line for i in ids)]
        pytest.fail("\n".join([*unexpected, "--- api log", *context, deployment.tail("api", 80)]))
