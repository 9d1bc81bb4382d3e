"""Input that used to end in a 500 (found by a hostile tester, issue 11): JSON nested a
thousand levels deep, numbers longer than Python's int-str limit, lone surrogates, forged
cursors holding what PostgreSQL cannot take, and run-list dates that overflow once in UTC.
Each gets a clear 4xx in the one error shape, signed in or not, on every backend."""

from __future__ import annotations

import base64
import json

import pytest

from adapters.http.json_limits import MAX_JSON_DEPTH, MAX_NUMBER_DIGITS

CRITERIA = [{"metric": "v", "condition": "<", "threshold": 1}]
DEEP = "[" * 1000 + "]" * 1000
LONG = "1" * 5000  # over Python's 4,300-digit limit


def assert_error(response, status, code=None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"code", "message", "errors"}, body
    if code:
        assert body["code"] == code, body
    return body


def post_raw(client, path, raw):
    return client.post(path, data=raw, content_type="application/json")


# -- nesting and long numbers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/devices", '{"name": "x", "labels": ' + DEEP + "}"),
        (
            "/api/test-cases",
            '{"name": "t", "criteria": [], "default_parameters": {"p": ' + DEEP + "}}",
        ),
        ("/api/devices", "{" * 1000),  # not even closed
        ("/api/test-runs", '{"parameters": ' + '{"a": ' * 900 + "1" + "}" * 901),
    ],
)
def test_deeply_nested_json_is_400(client, path, raw):
    body = assert_error(post_raw(client, path, raw), 400, "bad_request")
    assert "nested too deeply" in body["message"]
    assert client.get("/api/devices").status_code == 200


def test_deeply_nested_login_is_400_without_signing_in(anonymous):
    raw = '{"email": "a@lab.example", "password": ' + DEEP + "}"
    body = assert_error(post_raw(anonymous, "/auth/login", raw), 400, "bad_request")
    assert f"more than {MAX_JSON_DEPTH} levels" in body["message"]


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        (
            "/api/test-cases",
            '{"name": "t", "criteria": [{"metric": "v", "condition": "<", "threshold": '
            + LONG
            + "}]}",
        ),
        ("/api/test-cases", '{"name": "t", "criteria": [], "duration_s": ' + LONG + "}"),
        ("/api/test-cases", '{"name": "t", "criteria": [], "timeout_s": -' + LONG + "}"),
        ("/auth/login", '{"email": "a@lab.example", "password": ' + LONG + "}"),
    ],
)
def test_numbers_over_the_int_limit_are_400(anonymous, client, path, raw):
    caller = anonymous if path.startswith("/auth") else client
    body = assert_error(post_raw(caller, path, raw), 400, "bad_request")
    assert f"more than {MAX_NUMBER_DIGITS} digits" in body["message"]


def test_within_the_limits_is_fine(client):
    nested: object = "leaf"
    for _ in range(MAX_JSON_DEPTH - 2):  # the body and default_parameters are two levels
        nested = [nested]
    case = {
        "name": "deep but fine",
        "criteria": [{"metric": "v", "condition": "<", "threshold": 1}],
        # brackets and digits inside strings are text, not nesting or numbers
        "description": "[" * 500 + "9" * 4000,
        "default_parameters": {"p": nested},
    }
    response = client.post("/api/test-cases", json=case)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["default_parameters"]["p"] == nested


# -- lone surrogates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "raw", "field"),
    [
        ("post", "/api/environments", '{"name": "e", "variables": {"\\udfff": "x"}}', "variables"),
        (
            "post",
            "/api/environments",
            '{"name": "e", "variables": {"T": "\\ud800"}}',
            "variables.T",
        ),
        ("post", "/api/devices", '{"name": "meter \\udfff"}', "name"),
        ("post", "/api/devices", '{"name": "m", "labels": {"k": "\\udbff"}}', "labels.k"),
        (
            "post",
            "/auth/login",
            '{"email": "\\udfff@lab.example", "password": "xxxxxxxx"}',
            "email",
        ),
    ],
)
def test_lone_surrogates_are_422(client, method, path, raw, field):
    before = client.get("/api/environments").get_json()["items"]
    response = getattr(client, method)(path, data=raw, content_type="application/json")
    body = assert_error(response, 422, "validation_error")
    assert any(key.startswith(field) for key in body["errors"]), body
    assert "lone surrogate" in body["message"]
    assert client.get("/api/environments").get_json()["items"] == before


def test_a_surrogate_pair_is_a_character_like_any_other(client):
    raw = '{"name": "meter \\ud83d\\ude00"}'  # 😀, written as the JSON escape pair
    response = client.post("/api/devices", data=raw, content_type="application/json")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["name"] == "meter 😀"


# -- cursors ---------------------------------------------------------------------------------


def forged(*key) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


TIME = "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    "path",
    [
        "/api/devices?cursor=" + forged("devices", "meter\x00", "x"),
        "/api/devices?cursor=" + forged("devices", "meter\udfff", "x"),
        "/api/test-runs?cursor=" + forged("test_runs", TIME, "run\x00"),
        "/api/test-runs?cursor=" + base64.urlsafe_b64encode(b"[" * 1400).decode(),
        "/api/test-runs?cursor=%00",
        "/api/test-runs?cursor=%ED%BF%BF",
        "/auth/sessions?cursor=" + forged("sessions", TIME, "s\udfff"),
        "/auth/users?cursor=" + forged("users", "a\x00@lab.example", "u"),
    ],
)
def test_forged_cursors_are_422(client, lab, path):
    body = assert_error(client.get(path), 422)
    assert "cursor" in body["errors"], body


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize(
    "path",
    [
        "/api/test-runs?cursor=" + forged("test_runs", "9999-12-31T23:59:59-23:59", "r"),
        "/api/test-runs?cursor=" + forged("test_runs", "0001-01-01T00:00:00+23:59", "r"),
        "/auth/sessions?cursor=" + forged("sessions", "9999-12-31T23:59:59-23:59", "s"),
    ],
)
def test_forged_cursor_times_that_overflow_in_utc_are_422(client, path):
    """The SQL lists compare cursor times in UTC (the in-memory twins compare the text)."""
    body = assert_error(client.get(path), 422)
    assert "cursor" in body["errors"], body


# -- run-list dates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=9999-12-31T23:59:59-23:59", "to"),
        ("from=0001-01-01T00:00:00%2B23:59", "from"),
    ],
)
def test_run_list_dates_that_overflow_in_utc_are_422(client, lab, query, field):
    body = assert_error(client.get(f"/api/test-runs?{query}"), 422, "validation_error")
    assert field in body["errors"], body


def test_the_extreme_dates_that_fit_are_fine(client, lab):
    query = "from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z"
    assert client.get(f"/api/test-runs?{query}").status_code == 200
