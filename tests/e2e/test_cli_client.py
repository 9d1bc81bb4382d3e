"""`devicelab run ...` / `devicelab devices ...` as a CI job runs them: the installed command in
its own process, configured by DEVICELAB_URL and DEVICELAB_TOKEN (a service account's run
token), against the app served on a free port by the test. A fake runner (the test, through
the runner callback API) completes the runs; the exit code tells the verdict, --junit writes a
report valid against the JUnit schema."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.e2e.test_run_exports_http import result, valid_junit

BIN = Path(sys.executable).parent / "devicelab"


@pytest.fixture(params=["memory", "sqlite"])
def backend(request, tmp_path):
    return None if request.param == "memory" else f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def server(app):
    served = make_server("127.0.0.1", 0, app, threaded=True)
    # shutdown() waits up to one poll interval (0.5 s by default) at every teardown
    thread = threading.Thread(target=served.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{served.server_port}"
    served.shutdown()
    thread.join()


@pytest.fixture
def ci_token(client):
    made = client.post(
        "/auth/users", json={"name": "ci-firmware", "role": "engineer", "service_account": True}
    )
    assert made.status_code == 201, made.get_json()
    token = client.post(
        "/auth/tokens",
        json={"name": "pipeline", "scope": "run", "user_id": made.get_json()["id"]},
    )
    assert token.status_code == 201, token.get_json()
    return token.get_json()["token"]


class Cli:
    def __init__(self, url: str, token: str) -> None:
        self.env = {"DEVICELAB_URL": url, "DEVICELAB_TOKEN": token, "PATH": "/usr/bin:/bin"}

    def spawn(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(BIN), *args],
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        process = self.spawn(*args, **env)
        out, err = process.communicate(timeout=60)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture
def cli(server, ci_token):
    return Cli(server, ci_token)


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def started_run(client, process, status="queued", within_s=20) -> dict:
    """The run the command started, once it has `status`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the command ended: {finish(process)}")
        items = client.get(f"/api/test-runs?status={status}").get_json()["items"]
        if items:
            return items[0]
        time.sleep(0.1)
    raise AssertionError(f"no {status} run appeared")


def measure(report, lab, run, voltage):
    """The fake runner: it starts the run, reports progress, and measures `voltage`."""
    assert report(run["id"], "started", {"runner": "fake"}).status_code == 200
    assert report(run["id"], "progress", {"progress": 0.5, "message": "flashed"}).status_code == 200
    values = {} if voltage is None else {"voltage": voltage}
    answer = report(
        run["id"], "result", {"results": [result(lab["cases"][0], lab["devices"][0], **values)]}
    )
    assert answer.status_code == 200, answer.get_json()


START = ("run", "start", "--case", "voltage", "--env", "bench", "--device", "meter-0", "--wait")


@pytest.mark.parametrize(
    ("voltage", "verdict", "code"),
    [(230, "pass", 0), (251.5, "fail", 1), (None, "inconclusive", 2)],
)
def test_start_wait_exits_by_verdict_and_writes_a_valid_junit_report(
    cli, client, lab, report, tmp_path, voltage, verdict, code
):
    junit = tmp_path / "report.xml"
    process = cli.spawn(*START, "--param", "load=3", "--junit", str(junit), "--json")
    run = started_run(client, process)
    time.sleep(0.3)  # the command is following the run by now (or it reads it as it is)
    measure(report, lab, run, voltage)
    done = finish(process)

    assert done.returncode == code, done.stderr
    final = json.loads(done.stdout)
    assert final["id"] == run["id"] and final["verdict"] == verdict
    assert final["started_by"] == "ci-firmware@service.invalid"
    assert final["parameters"] == {"load": 3}
    assert f"meter-0 · voltage: {verdict}" in done.stderr
    document = valid_junit(junit.read_bytes())
    assert document.get("failures") == ("1" if verdict == "fail" else "0")
    if verdict == "fail":
        assert "voltage = 251.5 V (expected <= 240 V)" in done.stderr


def test_a_cancelled_run_exits_3(cli, client, lab):
    process = cli.spawn(*START)
    run = started_run(client, process)
    client.post(f"/api/test-runs/{run['id']}/cancel", json={"reason": "bench needed"})
    done = finish(process)
    assert done.returncode == 3, done.stderr
    assert "aborted: bench needed" in done.stderr
    assert done.stdout == ""


def test_a_failed_run_exits_3(cli, client, lab, report):
    process = cli.spawn(*START)
    run = started_run(client, process)
    report(run["id"], "failed", {"reason": "meter did not answer"})
    done = finish(process)
    assert done.returncode == 3, done.stderr
    assert "failed: meter did not answer" in done.stderr


def test_the_timeout_cancels_the_run_and_exits_3(cli, client, lab):
    done = cli(*START, "--timeout", "2")
    assert done.returncode == 3, done.stderr
    assert "cancelling it" in done.stderr
    (run,) = client.get("/api/test-runs").get_json()["items"]
    assert run["status"] == "aborted" and "--timeout" in run["failure_reason"]


def test_a_run_that_waits_shows_its_place_in_the_queue(cli, client, lab, report):
    busy = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][0]["id"]],
        },
    ).get_json()
    process = cli.spawn(*START, "--priority", "high")
    started_run(client, process, "waiting")
    time.sleep(0.5)
    client.post(f"/api/test-runs/{busy['id']}/cancel", json={})
    run = started_run(client, process, "queued")
    measure(report, lab, run, 230)
    done = finish(process)
    assert done.returncode == 0, done.stderr
    assert "waiting for devices" in done.stderr
    assert "waiting in the queue: position 1" in done.stderr
    assert "meter-0 · voltage: pass" in done.stderr


def test_devices_asked_for_by_kind(cli, client, lab):
    client.patch(f"/api/devices/{lab['devices'][2]['id']}", json={"model": "EM-340"})
    done = cli(
        "run",
        "start",
        "--case",
        lab["cases"][1]["id"],
        "--env",
        "bench",
        "--request",
        "model=EM-340,count=1,role=meter,label.bench=B",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert [(d["name"], d["role"]) for d in run["devices"]] == [("meter-2", "meter")]
    assert run["device_requests"] == [
        {"role": "meter", "model": "EM-340", "labels": {"bench": "B"}, "count": 1}
    ]


def test_unknown_and_ambiguous_names_are_clear_errors(cli, client, lab):
    unknown = cli("run", "start", "--case", "voltag", "--env", "bench", "--device", "meter-0")
    assert unknown.returncode == 4
    assert "unknown test case 'voltag'; did you mean 'voltage'?" in unknown.stderr
    # a device whose name is another device's id
    other = lab["devices"][1]
    client.patch(f"/api/devices/{lab['devices'][2]['id']}", json={"name": other["id"]})
    ambiguous = cli("run", "start", "--case", "voltage", "--env", "bench", "--device", other["id"])
    assert ambiguous.returncode == 4
    assert f"device {other['id']!r} is ambiguous" in ambiguous.stderr
    assert client.get("/api/test-runs").get_json()["items"] == []


def test_usage_and_server_errors_exit_4(cli, server, client, lab):
    assert cli("run", "start", "--env", "bench").returncode == 4  # no --case
    assert cli("run", "start", "--case", "voltage", "--env", "bench").returncode == 4
    no_token = cli("devices", "list", DEVICELAB_TOKEN="")
    assert no_token.returncode == 4 and "DEVICELAB_TOKEN" in no_token.stderr
    bad_token = cli("devices", "list", DEVICELAB_TOKEN="dlp_made-up")
    assert bad_token.returncode == 4 and "HTTP 401" in bad_token.stderr
    nobody = cli("devices", "list", DEVICELAB_URL="http://127.0.0.1:9")
    assert nobody.returncode == 4 and "cannot reach" in nobody.stderr
    missing = cli("run", "show", "no-such-run")
    assert missing.returncode == 4 and "HTTP 404" in missing.stderr


def test_show_list_cancel_and_devices(cli, client, lab, tmp_path):
    started = cli(
        "run",
        "start",
        "--case",
        "voltage",
        "--case",
        "standby",
        "--env",
        "bench",
        "--device",
        "meter-1",
    )
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()

    shown = cli("run", "show", run_id, "--junit", str(tmp_path / "r.xml"))
    assert shown.returncode == 0 and f"run {run_id}: queued on meter-1" in shown.stdout
    assert valid_junit((tmp_path / "r.xml").read_bytes()).get("skipped") == "2"
    listed = cli("run", "list", "--device", "meter-1", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
    assert cli("run", "list", "--device", "meter-0", "--json").stdout.strip() == "[]"

    cancelled = cli("run", "cancel", run_id, "--reason", "not today")
    assert cancelled.returncode == 0 and "aborted" in cancelled.stdout
    assert client.get(f"/api/test-runs/{run_id}").get_json()["failure_reason"] == "not today"

    devices = cli("devices", "list")
    assert devices.returncode == 0
    assert [line.split()[0] for line in devices.stdout.splitlines()] == [
        "NAME",
        "meter-0",
        "meter-1",
        "meter-2",
    ]
    labelled = json.loads(cli("devices", "list", "--label", "bench:B", "--json").stdout)
    assert [d["name"] for d in labelled] == ["meter-2"]
