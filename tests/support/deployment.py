"""devicelab as separate processes, the way it is deployed: the API (gunicorn through
`devicelab serve`), the worker and reference runners, each with its own environment and log.
Used by the process tests (tests/e2e, tests/load, tests/fault) and the benchmarks (bench/).
Everything listens on and talks to 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

PASSWORD = "processes-test-password"
EMAIL = "lab-admin@example.test"
BIN = Path(sys.executable).parent / "devicelab"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Deployment:
    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.env = {
            **os.environ,
            "DEVICELAB_DATA_DIR": str(tmp_path / "var"),
            "DEVICELAB_PORT": str(self.port),
            "DEVICELAB_WORKERS": "1",
            "DEVICELAB_SECRET_KEY": "processes-test-secret-0123456789-0123456789",
            "DEVICELAB_RELAY_INTERVAL_S": "0.05",
            "DEVICELAB_REAPER_INTERVAL_S": "0.5",
            "DEVICELAB_RUNNER_HEARTBEAT_S": "0.3",
            "DEVICELAB_QUEUE_ALLOWANCE_S": "60",
            "DEVICELAB_NEW_USER_PASSWORD": PASSWORD,
            **env,
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.servers: set[str] = set()  # the processes that are gunicorn (`devicelab serve`)
        self.token = ""

    def command(self, *args: str) -> None:
        subprocess.run(
            [str(BIN), *args], env=self.env, check=True, capture_output=True, timeout=120
        )

    def spawn(self, name: str, *args: str, **env: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        if args[:1] == ("serve",):
            self.servers.add(name)
        self.processes[name] = subprocess.Popen(
            [str(BIN), *args], env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
        )

    def kill(self, name: str, signum: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(signum)
        process.wait(timeout=30)

    def pause(self, name: str) -> None:
        """SIGSTOP: the process is frozen, its connections stay open (a hung host)."""
        self.processes[name].send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGCONT)

    def start(self, runners: int = 1, api_env: dict[str, str] | None = None) -> None:
        self.command("db", "upgrade")
        self.spawn("api", "serve", **(api_env or {}))
        self.spawn("worker", "worker")
        for n in range(runners):
            self.spawn(f"runner-{n}", "runner", "--runner-id", f"runner-{n}")
        # the admin is made while the processes start (none of them needs it; the login
        # below does): a second or so less per deployment than one after the other
        self.command("users", "create", "--email", EMAIL, "--role", "admin")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/api/ready", auth=False)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise AssertionError(f"the API did not become ready:\n{self.tail('api')}")
        status, body = self.request(
            "POST", "/auth/login", {"email": EMAIL, "password": PASSWORD}, auth=False
        )
        assert status == 200, body
        self.token = body["token"]

    def stop(self) -> None:
        """Every process ended, the API's with gunicorn's quick shutdown (the graceful one
        has its own test in tests/e2e/test_live_stream_processes.py); nothing about the stop
        is tested here, and what the tests wrote is committed."""
        for name, process in self.processes.items():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a paused process could not stop
                # SIGQUIT is gunicorn's quick shutdown; SIGTERM for the worker and runners
                process.send_signal(signal.SIGQUIT if name in self.servers else signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    def request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        timeout_s: float = 10,
    ):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    # -- lab helpers ------------------------------------------------------------------

    def make_lab(self, devices: int, duration_s: int, timeout_s: int = 60) -> dict:
        created = [
            self.request("POST", "/api/devices", {"name": f"meter-{n}"})[1] for n in range(devices)
        ]
        status, case = self.request(
            "POST",
            "/api/test-cases",
            {
                "name": f"voltage-{duration_s}",
                "criteria": [{"metric": "voltage", "condition": "<=", "threshold": 240}],
                "duration_s": duration_s,
                "timeout_s": timeout_s,
            },
        )
        assert status == 201, case
        environment = self.request("POST", "/api/environments", {"name": f"bench-{duration_s}"})[1]
        return {"devices": [d["id"] for d in created], "case": case["id"], "env": environment["id"]}

    def start_run(self, lab: dict, devices: list[str], case: str | None = None) -> dict:
        status, run = self.request(
            "POST",
            "/api/test-runs",
            {
                "test_case_ids": [case or lab["case"]],
                "environment_id": lab["env"],
                "device_ids": devices,
            },
        )
        assert status == 201, run
        return run

    def wait_for(self, run_id: str, statuses: set[str], within_s: float = 60) -> dict:
        deadline = time.monotonic() + within_s
        run: dict = {}
        while time.monotonic() < deadline:
            run = self.request("GET", f"/api/test-runs/{run_id}")[1]
            if run["status"] in statuses:
                return run
            time.sleep(0.05)
        logs = "\n".join(f"--- {n}\n{self.tail(n)}" for n in self.processes)
        raise AssertionError(f"run {run_id} stayed {run.get('status')}:\n{logs}")

    def device_statuses(self, ids: list[str]) -> list[str]:
        return [self.request("GET", f"/api/devices/{i}")[1]["status"] for i in ids]

    def releases(self, device_id: str, run_id: str) -> int:
        history = self.request("GET", f"/api/devices/{device_id}/history")[1]
        return sum(1 for h in history if h["run_id"] == run_id and h["from_status"] == "in_test")


def on_rabbitmq(
    tmp_path: Path, database_url: str, rabbitmq_url: str, runners: int, **env: str
) -> Iterator[Deployment]:
    """A started deployment on `database_url` and RabbitMQ, under broker names of its own
    (exchange, queues, control exchange), which are deleted after it stopped."""
    suffix = uuid.uuid4().hex[:8]
    deployment = Deployment(
        tmp_path,
        DEVICELAB_DATABASE_URL=database_url,
        DEVICELAB_BROKER_URL=rabbitmq_url,
        DEVICELAB_EXCHANGE=f"e2e.{suffix}",
        DEVICELAB_JOB_QUEUE=f"e2e.{suffix}.jobs",
        DEVICELAB_DEAD_LETTER_QUEUE=f"e2e.{suffix}.dead",
        DEVICELAB_CONTROL_EXCHANGE=f"e2e.{suffix}.control",
        **env,
    )
    deployment.start(runners=runners)
    try:
        yield deployment
    finally:
        deployment.stop()
        from kombu import Connection

        with Connection(rabbitmq_url) as connection:
            channel = connection.channel()
            for queue in (f"e2e.{suffix}.jobs", f"e2e.{suffix}.dead"):
                channel.queue_delete(queue)
            for exchange in (f"e2e.{suffix}", f"e2e.{suffix}.control"):
                channel.exchange_delete(exchange)
