"""The trust boundary around the runner, with real processes (API, worker, reference runner):
an engineer's hostile run parameters execute nothing on the runner host, and the command an
admin defined runs with nothing of the runner's environment (no secret key), in a working
directory of its own that is gone afterwards."""

from __future__ import annotations

import json
import sys

import pytest

from tests.support.deployment import Deployment

CANARY = "RUNNER_CANARY_7f3a"

DUMP = """
import json, os, sys
with open(os.environ["DEVICELAB_PARAMETERS_FILE"]) as f:
    parameters = json.load(f)
dump = {"env": dict(os.environ), "cwd": os.getcwd(), "parameters": parameters}
with open(os.path.join(sys.argv[1], os.environ["DEVICELAB_DEVICE_ID"] + ".json"), "w") as f:
    json.dump(dump, f)
print(json.dumps({"metric": "voltage", "value": 230, "unit": "V"}))
"""


@pytest.fixture
def lab(tmp_path):
    work = tmp_path / "runner-work"
    deployment = Deployment(
        tmp_path,
        DEVICELAB_RUNNER_WORK_DIR=str(work),
        DEVICELAB_RUNNER_TIME_FACTOR="0",
        **{CANARY: "only-the-runner-has-this"},
    )
    deployment.start(runners=1)
    yield deployment, work
    deployment.stop()


def as_engineer(deployment: Deployment) -> str:
    email, password = "engineer@example.test", "engineer-password-1"
    status, body = deployment.request(
        "POST",
        "/auth/users",
        {"email": email, "name": "Eve", "role": "engineer", "password": password},
    )
    assert status == 201, body
    status, body = deployment.request(
        "POST", "/auth/login", {"email": email, "password": password}, auth=False
    )
    assert status == 200, body
    return body["token"]


def test_hostile_run_parameters_execute_nothing_and_commands_inherit_nothing(lab, tmp_path):
    deployment, work = lab
    dumps, pwned = tmp_path / "dumps", tmp_path / "pwned"
    dumps.mkdir()
    script = tmp_path / "measure.py"
    script.write_text(DUMP)
    device = deployment.request("POST", "/api/devices", {"name": "meter-1"})[1]["id"]
    environment = deployment.request("POST", "/api/environments", {"name": "bench"})[1]["id"]
    criteria = [{"metric": "voltage", "condition": "<=", "threshold": 240}]
    simulated = deployment.request(
        "POST", "/api/test-cases", {"name": "simulated", "criteria": criteria, "duration_s": 0}
    )[1]["id"]
    status, measured = deployment.request(
        "POST",
        "/api/test-cases",
        {
            "name": "measured",
            "criteria": criteria,
            "duration_s": 0,
            "execution": {
                "executor": "command",
                "command": [sys.executable, str(script), str(dumps)],
            },
        },
    )
    assert status == 201, measured
    hostile = {
        "executor": "command",
        "command": [sys.executable, "-c", f"open({str(pwned)!r}, 'w').write('ran')"],
        "command_per_device": False,
    }
    deployment.token = as_engineer(deployment)

    for case in (simulated, measured["id"]):
        status, run = deployment.request(
            "POST",
            "/api/test-runs",
            {
                "test_case_ids": [case],
                "environment_id": environment,
                "device_ids": [device],
                "parameters": hostile,
            },
        )
        assert status == 201, run
        done = deployment.wait_for(run["id"], {"completed", "failed"})
        assert done["status"] == "completed", done
        assert not pwned.exists(), "a run parameter was executed on the runner host"

    dump = json.loads((dumps / f"{device}.json").read_text())
    assert CANARY not in dump["env"]
    assert "DEVICELAB_SECRET_KEY" not in dump["env"]
    assert "DEVICELAB_DATABASE_URL" not in dump["env"]
    assert dump["parameters"] == hostile  # the run's parameters arrive as data
    assert dump["cwd"].startswith(str(work) + "/")
    assert list(work.iterdir()) == []  # the command's working directory is gone
