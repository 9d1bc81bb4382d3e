"""The reference runner sends a run's log and its files through a real deployment: API
(gunicorn), worker and runner as processes, on the embedded stack (SQLite, files, the
SQLAlchemy broker) and on PostgreSQL + RabbitMQ (the artifact's bytes in the database). The
command's lines show up while it still runs; the file it leaves downloads as it was."""

from __future__ import annotations

import hashlib
import sys
import time
import urllib.request

import pytest

from tests.e2e.test_processes import _production
from tests.support.deployment import Deployment

PROGRAM = """
import json, os, sys, time
print("calibrating", flush=True)
print("bench relay engaged", file=sys.stderr, flush=True)
time.sleep(3)
path = os.path.join(os.environ["DEVICELAB_ARTIFACT_DIR"], "trace.csv")
with open(path, "w") as f:
    f.write("t,voltage\\n" + "".join(f"{n},{230 + n % 3}\\n" for n in range(2000)))
print(json.dumps({"metric": "voltage", "value": 231.0, "unit": "V"}), flush=True)
print("finished", flush=True)
"""
TRACE = ("t,voltage\n" + "".join(f"{n},{230 + n % 3}\n" for n in range(2000))).encode()


@pytest.fixture
def embedded(tmp_path):
    deployment = Deployment(tmp_path)
    deployment.start(runners=1)
    yield deployment
    deployment.stop()


@pytest.fixture
def production(tmp_path, empty_postgres_url, rabbitmq_url):
    yield from _production(tmp_path, empty_postgres_url, rabbitmq_url, 1)


def _command_run(deployment: Deployment, tmp_path) -> dict:
    script = tmp_path / "measure.py"
    script.write_text(PROGRAM)
    lab = deployment.make_lab(devices=1, duration_s=1, timeout_s=60)
    status, case = deployment.request(
        "POST",
        "/api/test-cases",
        {
            "name": "talking meter",
            "criteria": [{"metric": "voltage", "condition": "<=", "threshold": 240}],
            "duration_s": 3,
            "timeout_s": 60,
            "execution": {"executor": "command", "command": [sys.executable, str(script)]},
        },
    )
    assert status == 201, case
    return deployment.start_run(lab, lab["devices"], case=case["id"])


def _log(deployment: Deployment, run_id: str) -> list[dict]:
    status, page = deployment.request("GET", f"/api/test-runs/{run_id}/logs?limit=200")
    assert status == 200, page
    return page["items"]


def _check_logs_and_artifact(deployment: Deployment, tmp_path) -> None:
    run = _command_run(deployment, tmp_path)
    deployment.wait_for(run["id"], {"running"})
    seen_while_running = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = [line["message"] for line in _log(deployment, run["id"])]
        status = deployment.request("GET", f"/api/test-runs/{run['id']}")[1]["status"]
        if status != "running":
            break
        if "calibrating" in messages:
            seen_while_running = messages
            break
        time.sleep(0.05)
    assert "calibrating" in seen_while_running, deployment.tail("runner-0")
    assert "finished" not in seen_while_running  # not at the end: while it ran

    done = deployment.wait_for(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    lines = _log(deployment, run["id"])
    messages = [line["message"] for line in lines]
    assert {"calibrating", "bench relay engaged", "finished"} <= set(messages)
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert any("runner-0 started the run" in m for m in messages)

    status, listing = deployment.request("GET", f"/api/test-runs/{run['id']}/artifacts")
    assert status == 200
    (artifact,) = listing["items"]
    assert artifact["name"] == "meter-0-trace.csv" and artifact["content_type"] == "text/csv"
    assert artifact["sha256"] == hashlib.sha256(TRACE).hexdigest()
    request = urllib.request.Request(deployment.base + artifact["download_url"])
    request.add_header("Authorization", f"Bearer {deployment.token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.read() == TRACE
        assert response.headers["Content-Disposition"].startswith("attachment;")


def test_embedded_runner_sends_logs_while_running_and_uploads_its_file(embedded, tmp_path):
    _check_logs_and_artifact(embedded, tmp_path)


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_postgres_rabbitmq_runner_sends_logs_and_its_file(production, tmp_path):
    _check_logs_and_artifact(production, tmp_path)
