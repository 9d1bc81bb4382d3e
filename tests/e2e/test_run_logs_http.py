"""Run logs over HTTP: runners append batches with their run's credential, readers page,
filter, download and follow them; hostile batches are refused whole with 4xx."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

NOW = "2026-03-01T08:00:00+00:00"


def start(client, lab, devices=(0,), cases=(0,)):
    response = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][i]["id"] for i in cases],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][i]["id"] for i in devices],
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def line(message, level="info", device_id=None, test_case_id=None, at=NOW):
    return {
        "at": at,
        "level": level,
        "message": message,
        "device_id": device_id,
        "test_case_id": test_case_id,
    }


def logs(client, run_id, **query):
    response = client.get(f"/api/test-runs/{run_id}/logs", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_lines_are_numbered_in_arrival_order_and_filtered(client, lab, report):
    run = start(client, lab, devices=(0, 1))
    d0, d1 = lab["devices"][0]["id"], lab["devices"][1]["id"]
    case = lab["cases"][0]["id"]
    first = report(
        run["id"],
        "logs",
        {"lines": [line("boot", device_id=d0), line("oops", "error", d1, case)]},
    )
    assert first.status_code == 200, first.get_json()
    assert first.get_json() == {"accepted": 2, "dropped": 0, "truncated": False, "last_seq": 2}
    # a later batch written "earlier" by the runner's clock still comes after
    report(run["id"], "logs", {"lines": [line("late", "debug", at="2020-01-01T00:00:00Z")]})

    every = logs(client, run["id"])
    assert [(x["seq"], x["message"]) for x in every["items"]] == [
        (1, "boot"),
        (2, "oops"),
        (3, "late"),
    ]
    assert every["next_cursor"] is None
    assert [x["message"] for x in logs(client, run["id"], device_id=d1)["items"]] == ["oops"]
    assert [x["message"] for x in logs(client, run["id"], test_case_id=case)["items"]] == ["oops"]
    assert [x["message"] for x in logs(client, run["id"], level="info")["items"]] == [
        "boot",
        "oops",
    ]
    assert [x["message"] for x in logs(client, run["id"], level="error")["items"]] == ["oops"]


def test_pages_follow_the_cursor(client, lab, report):
    run = start(client, lab)
    report(run["id"], "logs", {"lines": [line(f"line {n}") for n in range(7)]})
    seen, cursor = [], None
    while True:
        page = logs(client, run["id"], limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [x["message"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"line {n}" for n in range(7)]
    bad = client.get(f"/api/test-runs/{run['id']}/logs", query_string={"cursor": "nonsense"})
    assert bad.status_code == 422
    # a follower catching up asks for what came after the last line it has
    assert [x["seq"] for x in logs(client, run["id"], after=5)["items"]] == [6, 7]
    too_far = client.get(f"/api/test-runs/{run['id']}/logs", query_string={"after": 2**31})
    assert too_far.status_code == 422


def test_the_plain_text_download_names_devices(client, lab, report):
    run = start(client, lab)
    device = lab["devices"][0]
    report(run["id"], "logs", {"lines": [line("two\nlines", "warning", device["id"])]})
    response = client.get(f"/api/test-runs/{run['id']}/logs.txt")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.get_data(as_text=True) == f"{NOW} WARNING {device['name']} two\\nlines\n"


def test_the_log_is_cut_once_with_a_marker_and_the_runner_is_told(client, lab, report, container):
    container.config.max_log_lines_per_run.override(3)
    run = start(client, lab)
    ok = report(run["id"], "logs", {"lines": [line("a"), line("b")]}).get_json()
    assert ok == {"accepted": 2, "dropped": 0, "truncated": False, "last_seq": 2}
    cut = report(run["id"], "logs", {"lines": [line("c"), line("d"), line("e")]}).get_json()
    assert cut == {"accepted": 1, "dropped": 2, "truncated": True, "last_seq": 4}
    later = report(run["id"], "logs", {"lines": [line("f")]}).get_json()
    assert later == {"accepted": 0, "dropped": 1, "truncated": True, "last_seq": 4}
    items = logs(client, run["id"])["items"]
    assert [x["message"] for x in items[:3]] == ["a", "b", "c"]
    assert len(items) == 4 and "log truncated" in items[3]["message"]


def test_the_byte_limit_cuts_the_log_too(client, lab, report, container):
    container.config.max_log_bytes_per_run.override(10)
    run = start(client, lab)
    cut = report(run["id"], "logs", {"lines": [line("12345"), line("678901")]}).get_json()
    assert cut == {"accepted": 1, "dropped": 1, "truncated": True, "last_seq": 2}


def hostile_batches(lab):
    other = "not-a-device-of-this-run"
    return {
        "huge line": {"lines": [line("ok"), line("x" * 8193)]},
        "too many lines": {"lines": [{"at": NOW, "message": ""}] * 1001},
        "unknown level": {"lines": [line("x", level="loud")]},
        "naive time": {"lines": [line("x", at="2026-03-01T08:00:00")]},
        "foreign device": {"lines": [line("x", device_id=other)]},
        "foreign case": {"lines": [line("x", test_case_id=lab["cases"][1]["id"])]},
        "message not text": {"lines": [{"at": NOW, "message": {"a": 1}}]},
        "not a list": {"lines": "x"},
        "no lines": {},
        "nul": {"lines": [line("a\u0000b")]},
    }


@pytest.mark.parametrize(
    "case",
    [
        "huge line",
        "too many lines",
        "unknown level",
        "naive time",
        "foreign device",
        "foreign case",
        "message not text",
        "not a list",
        "no lines",
        "nul",
    ],
)
def test_hostile_batches_are_refused_whole(client, lab, report, case):
    run = start(client, lab)
    response = report(run["id"], "logs", hostile_batches(lab)[case])
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] in ("validation_error", "invalid_value")
    assert logs(client, run["id"])["items"] == []


def test_binary_junk_and_invalid_utf8_are_refused(client, lab, container):
    run = start(client, lab)
    token = container.run_credentials().issue(run["id"], datetime.now(UTC) + timedelta(hours=1))
    for body in (
        b"\xff\xfe\x00junk\x80",
        b'{"lines": [{"at": "' + NOW.encode() + b'", "message": "\xc3\x28"}]}',
    ):
        response = client.post(
            f"/api/runner/test-runs/{run['id']}/logs",
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert 400 <= response.status_code < 500, response.get_data()
        assert "code" in response.get_json()
    assert logs(client, run["id"])["items"] == []


def test_another_runs_credential_stores_nothing(client, lab, report, container):
    first, second = start(client, lab, devices=(0,)), start(client, lab, devices=(1,))
    token = container.run_credentials().issue(first["id"], datetime.now(UTC) + timedelta(hours=1))
    response = report(second["id"], "logs", {"lines": [line("intruder")]}, token=token)
    assert response.status_code == 403
    assert logs(client, second["id"])["items"] == []
    assert report(second["id"], "logs", {"lines": [line("x")]}, token="junk").status_code == 401


def test_a_finished_run_takes_no_more_lines(client, lab, report):
    run = start(client, lab)
    client.post(f"/api/test-runs/{run['id']}/cancel", json={})
    response = report(run["id"], "logs", {"lines": [line("too late")]})
    assert response.status_code == 409 and response.get_json()["code"] == "run_finished"


def test_an_unknown_run_is_404(client, report):
    assert client.get("/api/test-runs/nope/logs").status_code == 404
    assert client.get("/api/test-runs/nope/logs.txt").status_code == 404
    assert report("nope", "logs", {"lines": []}).status_code == 404


def events_of(body: str) -> list[tuple[str, str, dict]]:
    found = []
    for block in body.split("\n\n"):
        fields = dict(
            part.split(": ", 1) for part in block.split("\n") if ": " in part and part[0] != ":"
        )
        if "event" in fields:
            found.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
    return found


def test_the_stream_sends_every_line_then_ends_when_the_run_has_finished(client, lab, report):
    run = start(client, lab)
    report(run["id"], "logs", {"lines": [line("one"), line("two"), line("three")]})
    client.post(f"/api/test-runs/{run['id']}/cancel", json={})
    response = client.get(f"/api/test-runs/{run['id']}/logs/stream", headers={"Last-Event-ID": "1"})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = events_of(response.get_data(as_text=True))
    assert [(i, e, d.get("message")) for i, e, d in events] == [
        ("2", "log", "two"),
        ("3", "log", "three"),
        ("", "end", None),
    ]


def test_the_stream_counts_against_the_users_stream_cap(client, lab, container):
    container.config.max_streams_per_user.from_value(1)
    run = start(client, lab)
    client.post(f"/api/test-runs/{run['id']}/cancel", json={})
    taken = container.open_stream()(client_user_id(client))
    try:
        refused = client.get(f"/api/test-runs/{run['id']}/logs/stream")
        assert refused.status_code == 429
    finally:
        container.close_stream()(taken)
    assert client.get(f"/api/test-runs/{run['id']}/logs/stream").status_code == 200


def client_user_id(client):
    return client.get("/auth/session").get_json()["user"]["id"]


@pytest.mark.parametrize("after", ["?after=100000000000000000000", ""])
def test_a_resumption_point_beyond_any_line_is_no_error(client, lab, report, after):
    run = start(client, lab)
    report(run["id"], "logs", {"lines": [line("one")]})
    client.post(f"/api/test-runs/{run['id']}/cancel", json={})
    headers = {} if after else {"Last-Event-ID": "9" * 40}
    response = client.get(f"/api/test-runs/{run['id']}/logs/stream{after}", headers=headers)
    if after:
        assert response.status_code == 422, response.get_data()
    else:  # a Last-Event-ID no stream issued starts from the beginning
        events = [e for _, e, _ in events_of(response.get_data(as_text=True))]
        assert events == ["log", "end"]


def test_the_lab_event_stream_refuses_a_resumption_point_beyond_64_bits(client):
    """Found with the log stream, which shares the query schema: SQLite raised OverflowError."""
    response = client.get("/api/events?after=100000000000000000000&max_seconds=1")
    assert response.status_code == 422


def test_the_log_stream_ends_with_session_ended_after_logout(client, lab, signed_in, container):
    """The same re-check as /api/events: the stream does not outlive its session."""
    from tests.support.live_streams import Stream

    container.config.stream_recheck_s.from_value(0.1)
    run = start(client, lab)  # queued: it never finishes by itself
    viewer = signed_in("viewer")
    stream = Stream(viewer, path=f"/api/test-runs/{run['id']}/logs/stream")
    assert stream.status is None or stream.status == 200
    assert viewer.post("/auth/logout").status_code == 204
    name, data = stream.events()[-1]
    assert (name, data["reason"]) == ("session_ended", "session_ended")


def test_a_purged_log_says_why_everywhere_it_is_read(client, lab, report, container):
    from dependency_injector import providers

    from adapters.clocks import SettableClock

    run = start(client, lab)
    report(run["id"], "logs", {"lines": [line("one"), line("two"), line("three")]})
    client.post(f"/api/test-runs/{run['id']}/cancel", json={})
    later = datetime.now(UTC) + timedelta(days=31)
    container.clock.override(providers.Object(SettableClock(later)))
    try:
        purged = container.purge_run_logs()(timedelta(days=30))
    finally:
        container.clock.reset_override()
    assert [(p.run_id, p.lines) for p in purged] == [(run["id"], 3)]
    why = (
        f"[devicelab] log purged: devicelab removed 3 lines on {later.date().isoformat()} "
        "because the run finished more than 30 days ago"
    )

    assert [(x["seq"], x["level"], x["message"]) for x in logs(client, run["id"])["items"]] == [
        (4, "warning", why)
    ]
    text = client.get(f"/api/test-runs/{run['id']}/logs.txt").get_data(as_text=True)
    assert text.endswith(f" WARNING - {why}\n") and text.count("\n") == 1
    # a follower that had read the three lines gets the marker as the next one
    stream = client.get(f"/api/test-runs/{run['id']}/logs/stream", headers={"Last-Event-ID": "3"})
    events = events_of(stream.get_data(as_text=True))
    assert [(i, e, d.get("message")) for i, e, d in events] == [
        ("4", "log", why),
        ("", "end", None),
    ]
