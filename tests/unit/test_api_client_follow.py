"""Following a run from the command line, on a scripted server: the live stream first (read
after it is open, so nothing is missed), polling when the stream cannot be had, the deadline,
and the Server-Sent Events parser."""

from __future__ import annotations

import io
import json

import pytest

from adapters.api_client.follow import RunFollower, WaitTimedOut
from adapters.api_client.http import ApiClientError, ServerEvent, _parse_events
from entrypoints.cli_client import exit_code_of, parse_param, parse_request, plan_exit_code


def run(status, verdict=None, **more):
    return {"id": "r1", "status": status, "verdict": verdict, **more}


class ScriptedServer:
    def __init__(self, states, events=None, stream_error=None):
        self.states, self.scripted, self.stream_error = list(states), events, stream_error
        self.log: list[str] = []

    def get(self, path, **query):
        self.log.append("get")
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def events_stream(self):
        yield ServerEvent("open", "", None)
        yield from self.scripted

    def events(self, after=None, max_seconds=300, read_timeout_s=40):
        self.log.append(f"events after {after}")
        if self.stream_error:
            raise self.stream_error
        return self.events_stream()


def event(name, data, n):
    return ServerEvent(name, json.dumps(data), str(n))


def test_the_stream_is_open_before_the_run_is_read_and_its_changes_are_followed():
    queue = {"length": 2, "items": [{"kind": "run", "id": "r1", "position": 2}]}
    server = ScriptedServer(
        [run("waiting")],
        events=[
            event("run", {**run("running"), "id": "other"}, 1),
            event("queue", queue, 2),
            event("run", run("running"), 3),
            event("run", run("completed", "fail"), 4),
        ],
    )
    seen, places = [], []
    follower = RunFollower(server, seen.append, lambda *place: places.append(place))
    done = follower("r1")
    assert done["verdict"] == "fail"
    assert server.log[:2] == ["events after None", "get"]
    assert [r["status"] for r in seen] == ["waiting", "running", "completed"]
    assert places == [(2, 2, None)]


def test_without_the_stream_it_polls_until_the_run_ends():
    server = ScriptedServer(
        [run("queued"), run("running"), run("completed", "pass")],
        stream_error=ApiClientError("not found", 404),
    )
    fallbacks = []
    follower = RunFollower(server, lambda _: None, on_fallback=fallbacks.append, poll_s=0)
    assert follower("r1")["verdict"] == "pass"
    assert fallbacks == ["not found"] and server.log.count("get") == 3


def test_a_refused_token_is_not_polled_again():
    server = ScriptedServer([run("queued")], stream_error=ApiClientError("no", 401))
    with pytest.raises(ApiClientError):
        RunFollower(server, lambda _: None)("r1")
    assert "get" not in server.log


def test_the_deadline_ends_the_wait_with_the_run_as_last_seen():
    now = [0.0]

    def clock():
        now[0] += 5
        return now[0]

    server = ScriptedServer([run("running")], stream_error=ApiClientError("gone", 0))
    follower = RunFollower(server, lambda _: None, poll_s=0, clock=clock)
    with pytest.raises(WaitTimedOut) as timed_out:
        follower("r1", timeout_s=12)
    assert timed_out.value.run["status"] == "running"


def test_server_sent_events_are_parsed_with_their_ids_and_keepalives():
    raw = (
        b"retry: 2000\n: stream open at change 7\n\n"
        b'id: 8\nevent: run\ndata: {"id":\ndata: 1}\n\n'
        b": keepalive\n\n"
    )
    events = list(_parse_events(io.BytesIO(raw)))
    assert [e.name for e in events] == ["comment", "open", "run", "comment"]
    assert events[2].id == "8" and events[2].data == '{"id":\n1}'
    assert events[2].json() == {"id": 1}


def test_exit_codes_and_option_parsing():
    assert [exit_code_of(run("completed", v)) for v in ("pass", "fail", "inconclusive")] == [
        0,
        1,
        2,
    ]
    assert exit_code_of(run("failed")) == exit_code_of(run("aborted")) == 3
    assert exit_code_of(run("completed", "marginal")) == 0


def test_plan_exit_codes_follow_the_run_ones():
    def plan_run(verdict, *statuses):
        return {"verdict": verdict, "runs": [{"status": s} for s in statuses]}

    assert plan_exit_code(plan_run("pass", "completed")) == 0
    # marginal is a pass with a warning, for a plan as for a run
    assert plan_exit_code(plan_run("marginal", "completed", "completed")) == 0
    assert plan_exit_code(plan_run("fail", "completed", "aborted")) == 1
    assert plan_exit_code(plan_run("inconclusive", "completed")) == 2
    assert plan_exit_code(plan_run("inconclusive", "completed", "failed")) == 3
    assert parse_request("model=EM-340,count=2,role=meter,label.type=dongle") == {
        "model": "EM-340",
        "count": 2,
        "role": "meter",
        "labels": {"type": "dongle"},
    }
    assert parse_param("load=3") == ("load", 3)
    assert parse_param("mode=eco") == ("mode", "eco")
    assert parse_param('tag="3"') == ("tag", "3")
