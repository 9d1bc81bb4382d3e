"""docs/run-log-batch.schema.json is what devicelab takes: its bounds are the server's own,
what the reference runner sends validates against it, and what it refuses the server refuses
too."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from adapters.clocks import SystemClock
from adapters.runner.callback_client import HttpCallbackClient
from application.runner import Callback, CallbackStatus, RunnerLogLine
from domain.run_logs import MAX_BATCH_LINES, MAX_MESSAGE_CHARS, LogLevel
from tests.support.runner import callback_server

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "run-log-batch.schema.json"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_the_schemas_bounds_are_the_servers(validator):
    line = validator.schema["properties"]["lines"]
    assert line["maxItems"] == MAX_BATCH_LINES
    assert line["items"]["properties"]["message"]["maxLength"] == MAX_MESSAGE_CHARS
    assert line["items"]["properties"]["level"]["enum"] == [level.value for level in LogLevel]


def test_what_the_reference_runner_sends_validates_and_a_full_log_is_noticed(validator):
    answer = {"accepted": 1, "dropped": 1, "truncated": True, "last_seq": 2}
    with callback_server(lambda path, body: (200, answer)) as server:
        client = HttpCallbackClient(SystemClock())
        callback = Callback(f"{server.url}/api/runner/test-runs/run-1", "token")
        lines = [
            RunnerLogLine(T0, "info", "calibrating"),
            RunnerLogLine(T0, "warning", "relay clicks", "dev-1", "case-1"),
        ]
        reply = client.logs(callback, lines, datetime.now(UTC))
        (received,) = server.posts_to("/logs")
    assert reply.status is CallbackStatus.ACCEPTED and reply.log_truncated
    validator.validate(received.body)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"lines": [{"message": "no time"}]},
        {"lines": [{"at": "2026-03-01T08:00:00+00:00", "message": "x" * 8193}]},
        {"lines": [{"at": "2026-03-01T08:00:00+00:00", "message": "x", "level": "loud"}]},
        {"lines": [{"at": "2026-03-01T08:00:00+00:00", "message": "x"}] * 1001},
    ],
)
def test_what_the_schema_refuses(validator, body):
    assert not validator.is_valid(body)
