"""An open event stream lives only as long as its session, and one user cannot take all of
the server's threads with streams: the stream re-checks its session every
DEVICELAB_STREAM_RECHECK_S and ends with a `session_ended` event once the session is over
(logout, user disabled, password changed elsewhere); each user holds at most
DEVICELAB_MAX_STREAMS_PER_USER streams, the next one is answered 429 with Retry-After, and a
slot comes free when its stream ends or stops renewing its lease.

The streams here are read through the Flask test client without buffering: a stream's
generator runs only while the test reads it, so a stream that is not being read holds its
slot without renewing it (as one whose process has died). The waits are bounded by the
stream's own `max_seconds`."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from dependency_injector import providers

from adapters.clocks import SettableClock
from tests.e2e.conftest import sign_in
from tests.support.live_streams import BOUND_S, Stream

RECHECK_S = 0.1


@pytest.fixture
def clock(container):
    clock = SettableClock(datetime.now(UTC))
    container.clock.override(providers.Object(clock))
    return clock


@pytest.fixture
def rechecked(container):
    container.config.stream_recheck_s.from_value(RECHECK_S)


def open_stream(client, max_seconds=BOUND_S, **headers):
    stream = Stream(client, max_seconds, **headers)
    assert stream.status == 200, stream.body
    return stream


def held_slots(container, user_id):
    with container.uow() as uow:
        return uow.stream_leases.of_user(user_id)


def user_id_of(client):
    return client.get("/auth/session").get_json()["user"]["id"]


@pytest.mark.usefixtures("rechecked")
def test_a_stream_ends_with_session_ended_after_logout_and_frees_its_slot(signed_in, container):
    viewer = signed_in("viewer")
    user_id = user_id_of(viewer)
    stream = open_stream(viewer)
    assert len(held_slots(container, user_id)) == 1

    assert viewer.post("/auth/logout").status_code == 204
    name, data = stream.events()[-1]
    assert name == "session_ended"
    assert data["reason"] == "session_ended"
    assert "sign in again" in data["message"]
    assert held_slots(container, user_id) == []


@pytest.mark.usefixtures("rechecked")
def test_a_stream_ends_when_its_user_is_disabled(client, signed_in):
    engineer = signed_in("engineer")
    user_id = user_id_of(engineer)
    stream = open_stream(engineer)
    changed = client.patch(f"/auth/users/{user_id}", json={"disabled": True})
    assert changed.status_code == 200, changed.get_json()
    assert stream.events()[-1][0] == "session_ended"


@pytest.mark.usefixtures("rechecked")
def test_a_stream_ends_when_the_password_is_changed_in_another_session(app, signed_in):
    signed_in("viewer", "watcher@lab.example", "first-password-0")
    on_the_wall = sign_in(app, "watcher@lab.example", "first-password-0")
    at_the_desk = sign_in(app, "watcher@lab.example", "first-password-0")
    wall, desk = open_stream(on_the_wall), open_stream(at_the_desk, max_seconds=1)
    changed = at_the_desk.post(
        "/auth/password",
        json={"current_password": "first-password-0", "new_password": "second-password-1"},
    )
    assert changed.status_code == 200, changed.get_json()
    assert wall.events()[-1][0] == "session_ended"
    # the session that changed the password goes on; its stream ends at max_seconds only
    assert all(name != "session_ended" for name, _ in desk.events())


@pytest.mark.usefixtures("clock")
def test_the_ninth_stream_of_a_user_is_refused_while_others_get_theirs(signed_in, container):
    viewer, other = signed_in("viewer"), signed_in("viewer")
    user_id = user_id_of(viewer)
    held = [open_stream(viewer) for _ in range(8)]
    assert len(held_slots(container, user_id)) == 8

    refused = viewer.get("/api/events?max_seconds=5")
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["code"] == "too_many_streams"
    assert set(body) >= {"code", "message", "errors"}
    assert refused.headers["Retry-After"].isdigit() and int(refused.headers["Retry-After"]) >= 1
    assert body["retry_after"] == int(refused.headers["Retry-After"])
    assert "8 live streams" in body["message"]

    others = open_stream(other)  # another user is not affected
    held[0].close()  # a stream whose client went away gives its slot back
    assert len(held_slots(container, user_id)) == 7
    held[0] = open_stream(viewer)
    for stream in [*held, others]:
        stream.close()
    assert held_slots(container, user_id) == []


@pytest.mark.usefixtures("clock")
def test_the_cap_is_configurable(signed_in, container):
    container.config.max_streams_per_user.from_value(2)
    viewer = signed_in("viewer")
    held = [open_stream(viewer) for _ in range(2)]
    assert viewer.get("/api/events?max_seconds=5").status_code == 429
    for stream in held:
        stream.close()


@pytest.mark.usefixtures("rechecked")
def test_a_stream_that_ends_by_itself_frees_its_slot(signed_in, container):
    viewer = signed_in("viewer")
    user_id = user_id_of(viewer)
    stream = open_stream(viewer, max_seconds=1)
    assert stream.events() == []  # max_seconds passed without a change
    assert held_slots(container, user_id) == []


@pytest.mark.usefixtures("rechecked")
def test_a_stream_that_stops_renewing_its_lease_loses_its_slot(signed_in, container, clock):
    viewer = signed_in("viewer")
    user_id = user_id_of(viewer)
    # while the test holds them unread they renew nothing, like streams of a killed process
    abandoned = [open_stream(viewer) for _ in range(8)]
    assert viewer.get("/api/events?max_seconds=5").status_code == 429
    # the process's re-check renews a stream's lease once after it last ran, then no more
    keeper = container.keep_streams_open()
    deadline = time.monotonic() + BOUND_S
    while keeper.to_renew and time.monotonic() < deadline:
        time.sleep(RECHECK_S / 2)
    assert keeper.to_renew == 0
    lease_s = container.stream_lease_s()
    assert lease_s == 2 * container.config.stream_recheck_s()
    clock.advance(lease_s + 1)  # every lease has lapsed
    fresh = [open_stream(viewer) for _ in range(8)]
    assert len(held_slots(container, user_id)) == 8
    # an abandoned stream that wakes up finds its slot gone and closes (the client reconnects)
    assert abandoned[0].events() == []
    assert ": stream closed (lease_lost)" in abandoned[0].text
    for stream in [*fresh, *abandoned[1:]]:
        stream.close()
    assert held_slots(container, user_id) == []
