"""The device list's kept answers (adapters/http/answer_cache.py), on every backend: the same
page between two changes is read and encoded once and then answered from its bytes, to every
caller with the caller's own tag; any change the list shows is in the next answer; a kept
answer never gets past the token check."""

from __future__ import annotations

from adapters.http.answer_cache import ANSWER_CACHE
from tests.e2e.test_api_tokens_http import make_token, token_client
from tests.e2e.test_auth_http import assert_error


def devices(client, **query):
    response = client.get("/api/devices", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response


def test_the_same_page_between_two_changes_is_read_once_and_answered_to_every_caller(
    app, client, signed_in, lab
):
    cache = app.extensions[ANSWER_CACHE]
    first = devices(client)
    assert (cache.hits, cache.misses) == (0, 1)
    again = devices(client)
    viewer = devices(signed_in("viewer"))
    assert (cache.hits, cache.misses) == (2, 1)
    assert again.data == viewer.data == first.data
    assert again.mimetype == viewer.mimetype == "application/json"
    assert again.headers["ETag"] == first.headers["ETag"] != viewer.headers["ETag"]
    assert again.headers["Cache-Control"] == "no-store"
    # another query is another answer
    assert len(devices(client, limit=1).get_json()["items"]) == 1
    assert cache.misses == 2


def test_every_change_the_list_shows_is_in_the_next_answer(app, client, lab):
    device = lab["devices"][0]

    def shown():
        return next(d for d in devices(client).get_json()["items"] if d["id"] == device["id"])

    assert shown()["location"] != "B2"
    assert client.patch(f"/api/devices/{device['id']}", json={"location": "B2"}).status_code == 200
    assert shown()["location"] == "B2"
    assert shown()["last_seen_at"] is None
    assert client.post(f"/api/devices/{device['id']}/heartbeat", json={}).status_code == 200
    assert shown()["last_seen_at"] is not None
    assert (
        client.post(
            f"/api/devices/{device['id']}/status",
            json={"status": "maintenance", "reason": "recalibrate"},
        ).status_code
        == 200
    )
    assert shown()["status"] == "maintenance"
    assert client.delete(f"/api/devices/{device['id']}").status_code == 204
    assert device["id"] not in {d["id"] for d in devices(client).get_json()["items"]}


def test_a_revoked_api_token_gets_401_not_the_kept_answer(app, signed_in, lab):
    engineer = signed_in("engineer")
    created = make_token(engineer, "read")
    reader = token_client(app, created["token"])
    devices(reader)
    devices(reader)
    assert app.extensions[ANSWER_CACHE].hits == 1
    assert engineer.delete(f"/auth/tokens/{created['id']}").status_code == 204
    assert_error(reader.get("/api/devices"), 401)
