"""Webhooks over HTTP, on every backend, with a receiver the test starts on 127.0.0.1 (listed
as an allowed host): deliveries made while it is down reach it once it is up, each event
exactly once, signed so that a changed body is detected; hosts outside the policy refused."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dependency_injector import providers

from domain.webhooks import RetryPolicy, TargetPolicy, signature
from tests.e2e.test_run_exports_http import complete, start


class Receiver:
    """An HTTP endpoint on a fixed port that can be down (nothing listens) or up."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def down(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[tuple[str, dict]]:
        return [(h["X-Devicelab-Event"], json.loads(b)) for h, b in self.received]


@pytest.fixture
def receiver():
    receiving = Receiver()
    yield receiving
    receiving.down()


@pytest.fixture
def container(container):
    container.webhook_policy.override(providers.Object(TargetPolicy.parse(["127.0.0.1"])))
    container.webhook_retry.override(
        providers.Object(RetryPolicy(first_delay_s=0.05, max_delay_s=0.2, retry_for_s=600))
    )
    return container


@pytest.fixture
def worker_pass(container):
    """The worker's webhook duty, run once per call (the worker runs it every interval)."""
    from entrypoints.worker import build_worker

    return next(d for d in build_worker(container).duties if d.name == "webhooks").action


def subscribe(client, url, events, **more):
    answer = client.post("/api/webhooks", json={"url": url, "events": events, **more})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_a_receiver_down_for_a_while_gets_each_event_exactly_once(
    client, lab, report, worker_pass, receiver
):
    worker_pass()  # the dispatcher starts at the end of the feed
    hook = subscribe(client, receiver.url, ["run.finished", "run.failed"])
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in client.get(f"/api/webhooks/{hook['id']}").get_json()

    passed = start(client, lab, [0])
    complete(report, lab, passed, voltages=[230])
    failed = start(client, lab, [1])
    complete(report, lab, failed, voltages=[250])
    aborted = start(client, lab, [2])
    client.post(f"/api/test-runs/{aborted['id']}/cancel", json={"reason": "no"})

    for _ in range(3):  # the receiver is down: every attempt fails and is logged
        worker_pass()
        time.sleep(0.06)
    log = client.get(f"/api/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert len(log) == 4  # three finished runs, one of them also a failed run
    assert all(d["status"] == "pending" and d["attempts"] >= 1 for d in log)
    assert all(d["last_error"] and d["last_status_code"] is None for d in log)

    receiver.up()
    deadline = time.monotonic() + 20
    while len(receiver.received) < 4 and time.monotonic() < deadline:
        worker_pass()
        time.sleep(0.05)
    for _ in range(3):
        worker_pass()
    events = sorted((name, body["data"]["run"]["id"]) for name, body in receiver.events())
    assert events == sorted(
        [
            ("run.finished", passed["id"]),
            ("run.finished", failed["id"]),
            ("run.finished", aborted["id"]),
            ("run.failed", aborted["id"]),
        ]
    )
    keys = [h["Idempotency-Key"] for h, _ in receiver.received]
    assert len(set(keys)) == 4
    for headers, body in receiver.received:
        assert headers["X-Devicelab-Signature"] == signature(hook["secret"], body)
        assert headers["X-Devicelab-Signature"] != signature(hook["secret"], body + b" ")
    log = client.get(f"/api/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert {d["status"] for d in log} == {"delivered"}
    assert {d["id"] for d in log} == set(keys)


def test_only_failed_verdicts_and_the_ping(client, lab, report, worker_pass, receiver):
    receiver.up()
    worker_pass()
    hook = subscribe(client, receiver.url, ["run.finished"], only_fail=True)
    complete(report, lab, start(client, lab, [0]), voltages=[230])
    failing = start(client, lab, [1])
    complete(report, lab, failing, voltages=[250])
    pinged = client.post(f"/api/webhooks/{hook['id']}/ping")
    assert pinged.status_code == 202, pinged.get_json()
    worker_pass()
    events = [(name, body["data"].get("run", {}).get("id")) for name, body in receiver.events()]
    assert sorted(events, key=str) == sorted(
        [("run.finished", failing["id"]), ("ping", None)], key=str
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # not listed
        "http://localhost:9/x",  # resolves to loopback, and is not listed by name
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
    ],
)
def test_hosts_outside_the_policy_are_refused(client, url):
    answer = client.post("/api/webhooks", json={"url": url, "events": ["run.finished"]})
    assert answer.status_code == 422, answer.get_json()
    assert "url" in answer.get_json()["errors"]
    assert client.get("/api/webhooks").get_json()["items"] == []


def test_engineers_manage_their_own_and_viewers_none(app, client, signed_in, receiver):
    engineer, other, viewer = signed_in("engineer"), signed_in("engineer"), signed_in("viewer")
    mine = subscribe(engineer, receiver.url, ["device.offline"])
    theirs = subscribe(other, receiver.url, ["run.failed"])
    assert [s["id"] for s in engineer.get("/api/webhooks").get_json()["items"]] == [mine["id"]]
    assert {s["id"] for s in client.get("/api/webhooks").get_json()["items"]} == {
        mine["id"],
        theirs["id"],
    }
    assert engineer.get(f"/api/webhooks/{theirs['id']}/deliveries").status_code == 404
    assert engineer.delete(f"/api/webhooks/{theirs['id']}").status_code == 404
    assert viewer.get("/api/webhooks").status_code == 403
    # an admin's run token is no admin here: it sees only its owner's own subscriptions
    token = client.post("/auth/tokens", json={"name": "ci", "scope": "run"}).get_json()["token"]
    runner = app.test_client()
    runner.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    assert runner.get("/api/webhooks").get_json()["items"] == []
    assert runner.get(f"/api/webhooks/{mine['id']}").status_code == 404
    assert engineer.delete(f"/api/webhooks/{mine['id']}").status_code == 204
    assert client.get(f"/api/webhooks/{mine['id']}").status_code == 404
    bad = engineer.post("/api/webhooks", json={"url": receiver.url, "events": ["run.exploded"]})
    assert bad.status_code == 422


def test_the_sender_connects_to_the_checked_address_not_to_the_name(receiver):
    from adapters.webhooks.http_sender import HttpWebhookSender
    from application.webhook_ports import SendFailed

    receiver.up()
    sender = HttpWebhookSender(timeout_s=5)
    url = f"http://hooks.invalid:{receiver.port}/hook?team=fw"
    assert sender.send(url, "127.0.0.1", b"{}", {"Content-Type": "application/json"}) == 204
    ((headers, body),) = receiver.received
    assert headers["Host"] == f"hooks.invalid:{receiver.port}" and body == b"{}"
    receiver.down()
    with pytest.raises(SendFailed) as refused:
        sender.send(url, "127.0.0.1", b"{}", {})
    assert refused.value.status_code is None
