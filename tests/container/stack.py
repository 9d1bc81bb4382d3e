"""The compose stack of the container test: deploy/compose.yaml with deploy/compose.test.yaml
on top, under a project name of its own, with fresh random secrets in a temporary env file.

Every call is bounded in time; `down()` removes the containers, networks and volumes and is
safe to call at any point (also before `up()`, to clear what a killed run left behind)."""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.container.engine import CommandFailed, compose_binary, run

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILES = (REPO / "deploy" / "compose.yaml", REPO / "deploy" / "compose.test.yaml")
PROJECT = "devicelab-containertest"
# what the test starts: compose.yaml without the telemetry side (MQTT, InfluxDB, Grafana)
SERVICES = ("postgres", "rabbitmq", "redis", "auth", "api", "proxy", "worker", "runner")
ADMIN_EMAIL = "admin@containertest.example"
UP_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    def __init__(self, scratch: Path, image: str, infra_image: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin_password = secrets.token_urlsafe(18)
        self.env_file = scratch / "compose.env"
        values = {
            "DEVICELAB_SECRET_KEY": secrets.token_urlsafe(48),
            "POSTGRES_PASSWORD": secrets.token_urlsafe(18),
            "RABBITMQ_PASSWORD": secrets.token_urlsafe(18),
            "INFLUXDB_ADMIN_PASSWORD": secrets.token_urlsafe(18),
            "INFLUXDB_PASSWORD": secrets.token_urlsafe(18),
            "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(18),
            "HTTP_PORT": str(self.port),
            "IMAGE": image,
            "DEVICELAB_TEST_INFRA_IMAGE": infra_image,
            "LOG_LEVEL": "INFO",
        }
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        self.env_file.chmod(0o600)
        self.token = ""

    # -- compose -----------------------------------------------------------------------------

    def compose(self, *args: str, timeout: float = 60, check: bool = True, **kwargs: Any):
        command = [compose_binary(), "--env-file", str(self.env_file), "-p", PROJECT]
        for path in COMPOSE_FILES:
            command += ["-f", str(path)]
        return run([*command, *args], timeout, check=check, **kwargs)

    def up(self) -> None:
        """Starts the services (compose waits for each dependency's condition, the migration
        job's success included) and waits until every container is healthy. Not `up --wait`:
        it counts the finished migration job as a failure."""
        started = time.monotonic()
        self.compose("up", "--detach", "--no-build", *SERVICES, timeout=UP_TIMEOUT_S)
        for service in SERVICES:
            for container in self.containers(service):
                left = max(UP_TIMEOUT_S - (time.monotonic() - started), 10)
                self.wait_healthy(container, within_s=left)

    def wait_healthy(self, container: str, within_s: float = 90) -> None:
        """Running, and healthy if it has a health check."""

        def healthy() -> bool:
            state = self.state(container)
            health = (state.get("Health") or {}).get("Status")
            return state["Running"] and health in (None, "healthy")

        wait_until(f"{container[:12]} healthy", healthy, within_s, every_s=1)

    def down(self) -> None:
        self.compose(
            "down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180, check=False
        )

    def logs(self, tail: int = 60) -> str:
        done = self.compose("logs", "--no-color", "--tail", str(tail), timeout=60, check=False)
        return done.stdout + done.stderr

    def proxy_errors(self) -> list[str]:
        """The access log lines of the proxy with a 5xx status, since the stack started."""
        done = self.compose("logs", "--no-color", "proxy", timeout=60)
        return [line for line in done.stdout.splitlines() if re.search(r'" 5\d\d \d+ "', line)]

    def containers(self, service: str) -> list[str]:
        """The ids of a service's containers, running or not, in replica order."""
        done = self.compose("ps", "--all", "--quiet", service, timeout=30)
        ids = done.stdout.split()
        numbered = []
        for container in ids:
            labels = run(
                ["docker", "inspect", "--format", "{{json .Config.Labels}}", container], 30
            ).stdout
            numbered.append(
                (int(json.loads(labels)["com.docker.compose.container-number"]), container)
            )
        return [container for _, container in sorted(numbered)]

    def state(self, container: str) -> dict[str, Any]:
        done = run(["docker", "inspect", "--format", "{{json .State}}", container], 30)
        return json.loads(done.stdout)

    def exec(self, service: str, *command: str, index: int = 1, timeout: float = 30, **kw):
        return self.compose(
            "exec", "-T", "--index", str(index), service, *command, timeout=timeout, **kw
        )

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a query, run by psql inside the PostgreSQL container."""
        done = self.exec(
            "postgres", "psql", "-U", "devicelab", "-d", "devicelab", "-AtX", "-F", "\t",
            "-v", "ON_ERROR_STOP=1", "-c", query,
        )  # fmt: skip
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def create_admin(self) -> None:
        """As the README says: `devicelab users create` in the migrate container, no TTY,
        the password from DEVICELAB_NEW_USER_PASSWORD."""
        self.compose(
            "run", "--rm", "--no-deps", "-T", "-e", f"DEVICELAB_NEW_USER_PASSWORD={self.admin_password}",
            "migrate", "devicelab", "users", "create", "--email", ADMIN_EMAIL, "--role", "admin",
            timeout=90,
        )  # fmt: skip

    # -- HTTP through the proxy, as a user on the host ---------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        timeout: float = 20,
    ) -> tuple[int, Any]:
        """(status, JSON body); status 0 when no answer came (refused, reset, timed out)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        bearer = self.token if token is None else token
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw) if raw else None
            except ValueError:
                return error.code, raw.decode(errors="replace")
        except (OSError, urllib.error.URLError) as error:
            return 0, str(error)

    def login(self) -> str:
        status, body = self.request(
            "POST", "/auth/login", {"email": ADMIN_EMAIL, "password": self.admin_password}, token=""
        )
        assert status == 200, (status, body)
        self.token = body["token"]
        return self.token

    def events(self, after: int, max_seconds: int, timeout: float) -> Iterator[tuple[str, dict]]:
        """(event name, data) from /api/events through the proxy, until the stream ends."""
        request = urllib.request.Request(
            f"{self.base}/api/events?after={after}&max_seconds={max_seconds}"
        )
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "text/event-stream")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            name, data = "message", ""
            for raw in response:
                line = raw.decode().rstrip("\n")
                if not line:
                    if data:
                        yield name, json.loads(data)
                    name, data = "message", ""
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()


def wait_until(what: str, check: Callable[[], Any], within_s: float, every_s: float = 0.5) -> Any:
    """check()'s first truthy answer, or AssertionError naming `what` after `within_s`."""
    deadline = time.monotonic() + within_s
    last: Any = None
    while True:
        try:
            last = check()
        except CommandFailed as error:
            last = error
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within_s:g} s (last: {last!r})")
        time.sleep(every_s)
