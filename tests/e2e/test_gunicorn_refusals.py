"""What gunicorn refuses before the app sees it — a request line over its limit (414),
headers over theirs (431), a request that is not HTTP (400) — is answered in the API's JSON
error shape, by a real gunicorn: `devicelab serve`, and the auth service started the way
deploy/compose.yaml starts it. (gunicorn's own answer is an HTML page.)"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.deployment import Deployment, free_port

GUNICORN = Path(sys.executable).parent / "gunicorn"


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], dict]:
    """Send `raw` as it is, read the whole answer (the server closes the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        # the server may answer and close before it has read all of it
        with contextlib.suppress(OSError):
            connection.sendall(raw)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, json.loads(body)


def wait_until_up(port: int, path: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status, _, _ = exchange(
                port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            if status == 200:
                return
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"the server did not come up:\n{log.read_text()[-3000:]}")


REFUSALS = [
    # (raw request, status, code)
    (b"GET /api/devices?q=" + b"x" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 20_000 + b"\r\n\r\n",
        431,
        "headers_too_large",
    ),
    (
        b"GET /api/health HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: v\r\n" % n for n in range(200))
        + b"\r\n",
        431,
        "headers_too_large",
    ),
    (b"GET /api/health HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request"),
]


def assert_refusals(port: int, prefix: str) -> None:
    for raw, status, code in REFUSALS:
        raw = raw.replace(b" /api/health", f" {prefix}/health".encode())
        answered, headers, body = exchange(port, raw)
        assert answered == status, (raw[:60], answered, body)
        assert headers["content-type"] == "application/json"
        assert body["code"] == code and body["message"] and body["errors"] == {}, body


@pytest.fixture
def served(tmp_path):
    deployment = Deployment(tmp_path)
    deployment.command("db", "upgrade")
    deployment.spawn("api", "serve")
    yield deployment
    deployment.stop()


def test_devicelab_serve_answers_gunicorns_refusals_in_json(served):
    wait_until_up(served.port, "/api/health", served.logs / "api.log")
    assert_refusals(served.port, "/api")
    # and the server still serves
    status, _, body = exchange(
        served.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200 and body["status"] == "ok"


@pytest.fixture
def auth_service(tmp_path):
    compose = (Path(__file__).parents[2] / "deploy" / "compose.yaml").read_text()
    worker_class = next(
        line.strip().removeprefix("- ")
        for line in compose.splitlines()
        if "--worker-class=" in line
    )
    deployment = Deployment(tmp_path)
    deployment.command("db", "upgrade")
    log = (tmp_path / "auth.log").open("w")
    process = subprocess.Popen(
        [
            str(GUNICORN),
            f"--bind=127.0.0.1:{(port := free_port())}",
            worker_class,
            "--workers=1",
            "entrypoints.auth_wsgi:create_auth_app()",
        ],
        env=deployment.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield port, tmp_path / "auth.log"
    process.terminate()
    process.wait(timeout=20)


def test_the_auth_service_as_deployed_answers_them_in_json_too(auth_service):
    port, log = auth_service
    wait_until_up(port, "/auth/health", log)
    assert_refusals(port, "/auth")
