"""The HTTP callback client against a fake devicelab on 127.0.0.1: what it sends, how it reads
each answer, and how it retries (the pauses are recorded, not slept)."""

from __future__ import annotations

import random
import socket
from datetime import timedelta

import pytest

from adapters.clocks import SettableClock
from adapters.runner.callback_client import HttpCallbackClient
from application.runner import Callback, CallbackStatus
from domain.test_runs import Observation, ResultReport
from tests.support.runner import T0, callback_server


class Pauses:
    """Stands in for sleeping: records each pause and moves the clock on by it."""

    def __init__(self, clock: SettableClock, stop_after: int | None = None) -> None:
        self.clock, self.stop_after = clock, stop_after
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> bool:
        self.seconds.append(seconds)
        self.clock.advance(seconds)
        return self.stop_after is not None and len(self.seconds) >= self.stop_after


def answers(*replies):
    """A server that answers each request with the next of `replies` (the last one repeats)."""
    remaining = list(replies)

    def respond(path, body):
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return respond


@pytest.fixture
def clock():
    return SettableClock(T0)


def client_for(clock, pauses=None, **options):
    return HttpCallbackClient(
        clock, request_timeout_s=5, wait=pauses or Pauses(clock), rng=random.Random(1), **options
    )


def callback_of(server) -> Callback:
    return Callback(f"{server.url}/api/runner/test-runs/run-1", "s3cret-token")


def test_started_posts_json_with_the_bearer_token(clock):
    with callback_server() as server:
        reply = client_for(clock).started(callback_of(server), "runner-a", clock.now())

    assert (reply.status, reply.http_status) == (CallbackStatus.ACCEPTED, 200)
    (request,) = server.received
    assert request.path == "/api/runner/test-runs/run-1/started"
    assert request.headers["Authorization"] == "Bearer s3cret-token"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {"runner": "runner-a"}


def test_results_are_sent_in_the_shape_of_the_callback_api(clock):
    report = ResultReport(
        "case-1",
        "dev-1",
        (
            Observation("voltage", 231.5, "V"),
            Observation("current", unit="A", samples=((0, 9.5), (1.5, 10.25))),
        ),
        message="ok",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=30),
    )
    with callback_server() as server:
        client = client_for(clock)
        client.result(callback_of(server), [report], clock.now())
        client.progress(callback_of(server), 0.5, "half way", [report], clock.now())
        client.failed(callback_of(server), "no bench", clock.now())

    result, progress, failed = (r.body for r in server.received)
    assert result == {
        "results": [
            {
                "test_case_id": "case-1",
                "device_id": "dev-1",
                "measurements": [
                    {"metric": "voltage", "value": 231.5, "unit": "V"},
                    {
                        "metric": "current",
                        "value": 10.25,
                        "unit": "A",
                        "samples": [[0, 9.5], [1.5, 10.25]],
                    },
                ],
                "message": "ok",
                "error": False,
                "started_at": "2026-03-01T08:00:00+00:00",
                "finished_at": "2026-03-01T08:00:30+00:00",
            }
        ]
    }
    assert progress["progress"] == 0.5 and progress["message"] == "half way"
    assert progress["results"] == result["results"]
    assert failed == {"reason": "no bench"}


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (409, "run_finished", CallbackStatus.FINISHED),
        (409, "conflicting_report", CallbackStatus.FINISHED),
        (409, "invalid_transition", CallbackStatus.FINISHED),
        (401, "unauthorized", CallbackStatus.UNAUTHORIZED),
        (403, "wrong_run_credential", CallbackStatus.UNAUTHORIZED),
        (404, "not_found", CallbackStatus.UNKNOWN_RUN),
        (422, "validation_error", CallbackStatus.REJECTED),
        (400, "bad_request", CallbackStatus.REJECTED),
    ],
)
def test_final_answers_come_back_at_once_with_their_error_code(clock, status, code, expected):
    body = {"code": code, "message": f"{code} happened", "errors": {}}
    pauses = Pauses(clock)
    with callback_server(answers((status, body))) as server:
        reply = client_for(clock, pauses).started(
            callback_of(server), "r", clock.now() + timedelta(minutes=5)
        )

    assert (reply.status, reply.http_status, reply.code) == (expected, status, code)
    assert reply.message == f"{code} happened"
    assert len(server.received) == 1 and pauses.seconds == []


@pytest.mark.parametrize(
    ("headers", "body_retry_after", "expected"),
    [({"Retry-After": "12"}, 12, 12.0), ({}, 7, 7.0), ({}, None, None)],
)
def test_a_claimed_run_comes_back_at_once_with_when_the_claim_lapses(
    clock, headers, body_retry_after, expected
):
    body = {"code": "run_claimed", "message": "being executed by runner-b", "errors": {}}
    if body_retry_after is not None:
        body["retry_after"] = body_retry_after
    pauses = Pauses(clock)
    with callback_server(answers((409, body, headers))) as server:
        reply = client_for(clock, pauses).started(
            callback_of(server), "r", clock.now() + timedelta(minutes=5)
        )

    assert (reply.status, reply.code, reply.retry_after_s) == (
        CallbackStatus.CLAIMED,
        "run_claimed",
        expected,
    )
    assert len(server.received) == 1 and pauses.seconds == []  # the runner decides


def test_a_heartbeat_names_its_runner(clock):
    with callback_server() as server:
        client_for(clock).progress(callback_of(server), 0.5, "", [], clock.now(), "host-3")
    assert server.received[0].body["runner"] == "host-3"


def test_server_errors_are_retried_with_growing_pauses_until_accepted(clock):
    pauses = Pauses(clock)
    error = {"code": "internal_error", "message": "boom"}
    with callback_server(answers((503, error), (500, error), (200, {}))) as server:
        reply = client_for(clock, pauses).result(
            callback_of(server), [], clock.now() + timedelta(minutes=5)
        )

    assert reply.status is CallbackStatus.ACCEPTED
    assert len(server.received) == 3
    first, second = pauses.seconds
    assert 0.25 <= first <= 0.5 <= second <= 1.0


def test_a_concurrent_update_is_asked_again(clock):
    busy = (409, {"code": "concurrent_update", "message": "try again"})
    with callback_server(answers(busy, (200, {}))) as server:
        reply = client_for(clock).progress(
            callback_of(server), 0.1, "", [], clock.now() + timedelta(minutes=1)
        )
    assert reply.status is CallbackStatus.ACCEPTED
    assert len(server.received) == 2


def test_retries_end_at_the_give_up_time(clock):
    pauses = Pauses(clock)
    with callback_server(answers((502, {"code": "bad_gateway", "message": "proxy"}))) as server:
        reply = client_for(clock, pauses, max_backoff_s=4).result(
            callback_of(server), [], clock.now() + timedelta(seconds=30)
        )

    assert (reply.status, reply.http_status) == (CallbackStatus.UNAVAILABLE, 502)
    assert sum(pauses.seconds) <= 30
    assert len(server.received) == len(pauses.seconds) + 1
    assert max(pauses.seconds) <= 4


def test_retry_after_is_honoured(clock):
    pauses = Pauses(clock)
    limited = (429, {"code": "too_many_requests", "message": "slow down"}, {"Retry-After": "7"})
    with callback_server(answers(limited, (200, {}))) as server:
        reply = client_for(clock, pauses).failed(
            callback_of(server), "x", clock.now() + timedelta(minutes=1)
        )
    assert reply.status is CallbackStatus.ACCEPTED
    assert pauses.seconds == [7.0]


def test_a_stopping_runner_ends_the_retries(clock):
    pauses = Pauses(clock, stop_after=1)
    with callback_server(answers((503, {}))) as server:
        reply = client_for(clock, pauses).result(
            callback_of(server), [], clock.now() + timedelta(hours=1)
        )
    assert reply.status is CallbackStatus.UNAVAILABLE
    assert len(server.received) == 1


def test_no_server_is_unavailable(clock):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the socket is closed
    pauses = Pauses(clock)
    callback = Callback(f"http://127.0.0.1:{port}/api/runner/test-runs/run-1", "t")

    reply = client_for(clock, pauses).started(callback, "r", clock.now() + timedelta(seconds=2))

    assert reply.status is CallbackStatus.UNAVAILABLE
    assert reply.http_status is None and "no answer" in reply.message
    assert pauses.seconds  # it did try again


def test_a_redirect_is_not_followed(clock):
    moved = (307, {}, {"Location": "http://elsewhere.test/"})
    with callback_server(answers(moved)) as server:
        reply = client_for(clock).started(callback_of(server), "r", clock.now())
    assert (reply.status, reply.http_status) == (CallbackStatus.REJECTED, 307)
    assert len(server.received) == 1


def test_started_and_heartbeats_say_what_the_runner_is(clock):
    about = {"host": "bench-pc-3", "version": "0.1.0", "executors": ["command", "simulate"]}
    with callback_server() as server:
        client = client_for(clock, about=about)
        client.started(callback_of(server), "runner-a", clock.now())
        client.progress(callback_of(server), 0.5, "", [], clock.now(), "runner-a")
        client.result(callback_of(server), [], clock.now())
    started, progress, result = (r.body for r in server.received)
    assert started == {**about, "runner": "runner-a"}
    assert {k: progress[k] for k in about} == about and progress["runner"] == "runner-a"
    assert result == {"results": []}  # the result is no report of the runner's own


def test_a_drained_runners_refused_claim_says_so(clock):
    body = {"code": "run_claimed", "message": "runner r is drained", "reason": "runner_drained"}
    with callback_server(answers((409, body))) as server:
        reply = client_for(clock).started(callback_of(server), "r", clock.now())
    assert (reply.status, reply.reason, reply.retry_after_s) == (
        CallbackStatus.CLAIMED,
        "runner_drained",
        None,
    )
