"""ETags on the main lists, on every backend: a 304 without a body while nothing changed, a new
tag after any write that the list shows, tags that differ per query and per caller, and a
logged-out session or revoked API token that gets 401 rather than 304."""

from __future__ import annotations

import pytest

from tests.e2e.test_api_tokens_http import make_token, start_body, token_client
from tests.e2e.test_auth_http import assert_error

LISTS = ["/api/devices", "/api/test-runs", "/api/test-cases", "/api/environments"]


def tag_of(client, path, **query):
    response = client.get(path, query_string=query)
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"].startswith('"')
    return response.headers["ETag"]


def asked_again(client, path, etag, **query):
    return client.get(path, query_string=query, headers={"If-None-Match": etag})


@pytest.mark.parametrize("path", LISTS)
def test_an_unchanged_list_answers_304_without_a_body(client, lab, path):
    etag = tag_of(client, path)
    again = asked_again(client, path, etag)
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == "no-store"  # no shared cache keeps lab data
    assert asked_again(client, path, f"W/{etag}").status_code == 304  # weak comparison
    assert asked_again(client, path, '"something else"').status_code == 200


def test_writes_the_lists_show_change_their_tags(client, lab):
    device = lab["devices"][0]
    tags = {path: tag_of(client, path) for path in LISTS}

    assert client.patch(f"/api/devices/{device['id']}", json={"location": "B2"}).status_code == 200
    changed = asked_again(client, "/api/devices", tags["/api/devices"])
    assert changed.status_code == 200
    assert {d["location"] for d in changed.get_json()["items"] if d["id"] == device["id"]} == {"B2"}
    tags["/api/devices"] = changed.headers["ETag"]

    heartbeat = client.post(f"/api/devices/{device['id']}/heartbeat", json={})
    assert heartbeat.status_code == 200
    assert asked_again(client, "/api/devices", tags["/api/devices"]).status_code == 200

    case = lab["cases"][1]
    assert client.patch(f"/api/test-cases/{case['id']}", json={"name": "idle"}).status_code == 200
    assert asked_again(client, "/api/test-cases", tags["/api/test-cases"]).status_code == 200

    environment = lab["environment"]
    renamed = client.patch(f"/api/environments/{environment['id']}", json={"name": "bench 2"})
    assert renamed.status_code == 200
    assert asked_again(client, "/api/environments", tags["/api/environments"]).status_code == 200

    assert client.post("/api/test-runs", json=start_body(lab)).status_code == 201
    assert asked_again(client, "/api/test-runs", tags["/api/test-runs"]).status_code == 200


def test_deletions_change_the_tags(client, lab):
    environment = client.post("/api/environments", json={"name": "spare"}).get_json()
    etag = tag_of(client, "/api/environments")
    assert client.delete(f"/api/environments/{environment['id']}").status_code == 204
    assert asked_again(client, "/api/environments", etag).status_code == 200

    device = client.post("/api/devices", json={"name": "spare meter"}).get_json()
    etag = tag_of(client, "/api/devices")
    assert client.delete(f"/api/devices/{device['id']}").status_code == 204
    assert asked_again(client, "/api/devices", etag).status_code == 200


def test_the_tag_differs_per_query(client, lab):
    queries = [{}, {"limit": 1}, {"limit": 2}, {"status": "available"}, {"label": "bench:A"}]
    tags = [tag_of(client, "/api/devices", **query) for query in queries]
    assert len(set(tags)) == len(queries)
    # a tag given for one query is no answer to another
    assert asked_again(client, "/api/devices", tags[1], limit=2).status_code == 200
    assert asked_again(client, "/api/devices", tags[1], limit=1).status_code == 304
    # the same list under another endpoint is another list
    assert tag_of(client, "/api/test-cases") != tag_of(client, "/api/environments")


def test_the_tag_differs_per_caller(app, client, signed_in, lab):
    viewer = signed_in("viewer")
    engineer = signed_in("engineer")
    read_token = token_client(app, make_token(engineer, "read")["token"])
    tags = {
        "admin": tag_of(client, "/api/devices"),
        "viewer": tag_of(viewer, "/api/devices"),
        "engineer": tag_of(engineer, "/api/devices"),
        "engineer's read token": tag_of(read_token, "/api/devices"),
    }
    assert len(set(tags.values())) == len(tags)
    assert asked_again(viewer, "/api/devices", tags["admin"]).status_code == 200
    assert asked_again(viewer, "/api/devices", tags["viewer"]).status_code == 304


def test_a_logged_out_session_gets_401_not_304(app, signed_in, lab):
    engineer = signed_in("engineer")
    etag = tag_of(engineer, "/api/devices")
    assert asked_again(engineer, "/api/devices", etag).status_code == 304
    assert engineer.post("/auth/logout").status_code == 204
    assert_error(asked_again(engineer, "/api/devices", etag), 401)


def test_a_revoked_api_token_gets_401_not_304(app, signed_in, lab):
    engineer = signed_in("engineer")
    created = make_token(engineer, "read")
    reader = token_client(app, created["token"])
    etag = tag_of(reader, "/api/test-runs")
    assert asked_again(reader, "/api/test-runs", etag).status_code == 304
    assert engineer.delete(f"/auth/tokens/{created['id']}").status_code == 204
    assert_error(asked_again(reader, "/api/test-runs", etag), 401)


def test_the_openapi_document_describes_the_tags(anonymous):
    spec = anonymous.get("/api/openapi.json").get_json()
    for path in LISTS:
        operation = spec["paths"][path]["get"]
        assert "304" in operation["responses"], path
        assert "ETag" in operation["responses"]["200"]["headers"], path
        assert "If-None-Match" in {p["name"] for p in operation.get("parameters", [])}, path
        # the answer's schema is still the page's
        assert "schema" in operation["responses"]["200"]["content"]["application/json"], path
