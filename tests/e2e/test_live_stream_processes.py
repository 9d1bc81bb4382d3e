"""Live streams on real API processes (gunicorn through `devicelab serve`) sharing one
database, as the workers of one instance do: the per-user cap counts the streams of all of
them, a killed process's streams give their slots back once their leases lapse, a client that
goes away frees its slot, and a logout through one process ends a stream held by the other.

Every wait is bounded; nothing asserts how fast."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.deployment import Deployment, free_port

CAP = 3
RECHECK_S = 0.3


class Stream:
    """GET /api/events on a connection of its own, left open."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connection.request(
            "GET", "/api/events?max_seconds=120", headers={"Authorization": f"Bearer {token}"}
        )
        self.response = self.connection.getresponse()
        self.status = self.response.status
        if self.status == 200:
            assert self.response.read1(1024).startswith(b"retry:")
        else:
            self.body = json.loads(self.response.read())

    def rest(self) -> str:
        """Everything until the server ends the stream (bounded by the socket timeout)."""
        return self.response.read().decode()

    def close(self) -> None:
        self.connection.close()


def eventually_opens(port: int, token: str, within_s: float = 30) -> Stream:
    deadline = time.monotonic() + within_s
    while True:
        stream = Stream(port, token)
        if stream.status == 200 or time.monotonic() > deadline:
            assert stream.status == 200, stream.body
            return stream
        assert stream.status == 429
        time.sleep(RECHECK_S)


def kill_with_its_workers(deployment: Deployment, name: str) -> None:
    """kill -9 the gunicorn workers of an API process, then its master: nothing of it may
    finish its streams or free their slots."""
    master = deployment.processes[name].pid
    for entry in Path("/proc").iterdir():
        try:
            # the field after the parenthesised command name: state, then the parent's pid
            ppid = int(entry.joinpath("stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == master:
            os.kill(int(entry.name), signal.SIGKILL)
    deployment.kill(name)


@pytest.fixture
def two_apis(tmp_path):
    deployment = Deployment(
        tmp_path,
        DEVICELAB_STREAM_RECHECK_S=str(RECHECK_S),
        DEVICELAB_MAX_STREAMS_PER_USER=str(CAP),
    )
    deployment.start(runners=0)
    second = free_port()
    deployment.spawn("api-2", "serve", DEVICELAB_PORT=str(second))
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", second, timeout=5)
            connection.request("GET", "/api/ready")
            if connection.getresponse().status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, deployment.tail("api-2")
        time.sleep(0.3)
    yield deployment, deployment.port, second
    deployment.stop()


def sign_in_viewer(deployment: Deployment, email: str) -> str:
    password = "viewer-password-0"
    status, body = deployment.request(
        "POST",
        "/auth/users",
        {"email": email, "name": email, "role": "viewer", "password": password},
    )
    assert status == 201, body
    status, body = deployment.request(
        "POST", "/auth/login", {"email": email, "password": password}, auth=False
    )
    assert status == 200, body
    return body["token"]


def test_the_cap_spans_processes_and_slots_come_back(two_apis):
    deployment, first, second = two_apis
    token = deployment.token
    held = [Stream(first, token), Stream(second, token), Stream(second, token)]
    assert [s.status for s in held] == [200] * CAP
    for port in (first, second):
        refused = Stream(port, token)
        assert refused.status == 429, refused.body
        assert refused.body["code"] == "too_many_streams"
        assert int(refused.response.getheader("Retry-After")) >= 1
    other = Stream(second, sign_in_viewer(deployment, "wall@lab.example"))
    assert other.status == 200

    # the client of a stream goes away: its slot comes back
    held.pop(0).close()
    held.append(eventually_opens(first, token))

    # kill -9 the second API: its two streams stop renewing, their slots lapse
    kill_with_its_workers(deployment, "api-2")
    held += [eventually_opens(first, token), eventually_opens(first, token)]
    assert Stream(first, token).status == 429
    for stream in [*held, other]:
        stream.close()


def test_a_logout_through_one_process_ends_a_stream_on_the_other(two_apis):
    deployment, first, second = two_apis
    token = sign_in_viewer(deployment, "viewer@lab.example")
    stream = Stream(first, token)
    assert stream.status == 200
    connection = http.client.HTTPConnection("127.0.0.1", second, timeout=10)
    connection.request("POST", "/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert connection.getresponse().status == 204
    rest = stream.rest()
    assert "event: session_ended" in rest
    assert '"reason":"session_ended"' in rest


@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_a_gracefully_stopping_server_ends_its_streams_at_once(tmp_path, worker_class):
    """SIGTERM (a deploy, a scale-down): gunicorn waits for the requests in flight, and a
    stream never ends by itself, so the stop took the whole graceful timeout and then cut
    the stream without a word. Now the stream is told and ends (its client reconnects with
    Last-Event-ID elsewhere), and the server stops without running into the timeout."""
    deployment = Deployment(
        tmp_path, DEVICELAB_STREAM_RECHECK_S=str(RECHECK_S), DEVICELAB_WORKER_CLASS=worker_class
    )
    deployment.start(runners=0)
    try:
        streams = [Stream(deployment.port, deployment.token) for _ in range(2)]
        assert [s.status for s in streams] == [200, 200]
        api = deployment.processes["api"]
        api.send_signal(signal.SIGTERM)
        for stream in streams:
            assert ": stream closed (server_stopping)" in stream.rest()
        assert api.wait(timeout=30) == 0, deployment.tail("api")
        assert "graceful timeout" not in deployment.tail("api", 200)
    finally:
        deployment.stop()
