"""API tokens and service accounts over HTTP, on every backend: what a token of each scope may
do on /api, that the owner's current role bounds it, revocation, what a token may not do in
/auth, and service accounts that cannot sign in but run with their tokens."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import sign_in
from tests.e2e.test_auth_http import assert_error, bearer


def user_id_of(client):
    return client.get("/auth/session").get_json()["user"]["id"]


def make_token(client, scope="run", **body):
    response = client.post("/auth/tokens", json={"name": f"{scope} token", "scope": scope, **body})
    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def token_client(app, token):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def start_body(lab, device=0):
    return {
        "test_case_ids": [lab["cases"][0]["id"]],
        "environment_id": lab["environment"]["id"],
        "device_ids": [lab["devices"][device]["id"]],
    }


def test_a_read_token_reads_but_cannot_start_a_run(app, signed_in, lab):
    engineer = signed_in("engineer")
    created = make_token(engineer, "read")
    assert created["token"].startswith("dlp_") and created["scope"] == "read"
    assert created["last_used_at"] is None and created["expires_at"]
    reader = token_client(app, created["token"])
    assert reader.get("/api/devices").status_code == 200
    error = assert_error(reader.post("/api/test-runs", json=start_body(lab)), 403, "forbidden")
    assert "scope (read)" in error["message"] and "run or full" in error["message"]


def test_a_run_token_starts_and_cancels_runs_but_edits_nothing(app, signed_in, lab):
    engineer = signed_in("engineer")
    runner = token_client(app, make_token(engineer, "run")["token"])
    started = runner.post("/api/test-runs", json=start_body(lab))
    assert started.status_code in (201, 202), started.get_json()
    run = started.get_json()
    cancelled = runner.post(f"/api/test-runs/{run['id']}/cancel", json={"reason": "ci"})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert_error(runner.post("/api/environments", json={"name": "chamber"}), 403, "forbidden")
    # the owner's session, and the token's record, say who started it
    listed = engineer.get("/auth/tokens").get_json()["items"]
    assert listed[0]["last_used_at"] is not None


def test_a_demoted_owners_full_token_loses_its_powers_at_once(app, client, signed_in, lab):
    engineer = signed_in("engineer")
    full = token_client(app, make_token(engineer, "full")["token"])
    assert full.post("/api/environments", json={"name": "chamber"}).status_code == 201
    patched = client.patch(f"/auth/users/{user_id_of(engineer)}", json={"role": "viewer"})
    assert patched.status_code == 200
    error = assert_error(full.post("/api/environments", json={"name": "oven"}), 403)
    assert "your role (viewer)" in error["message"]
    assert full.get("/api/environments").status_code == 200
    client.patch(f"/auth/users/{user_id_of(engineer)}", json={"disabled": True})
    assert_error(full.get("/api/environments"), 401, "unauthenticated")


def test_a_revoked_or_made_up_token_is_401(app, signed_in, anonymous):
    engineer = signed_in("engineer")
    created = make_token(engineer, "read")
    reader = token_client(app, created["token"])
    assert reader.get("/api/devices").status_code == 200
    assert engineer.delete(f"/auth/tokens/{created['id']}").status_code == 204
    body = assert_error(reader.get("/api/devices"), 401, "unauthenticated")
    assert "revoked" in body["message"]
    assert engineer.get("/auth/tokens").get_json()["items"] == []
    assert_error(engineer.delete(f"/auth/tokens/{created['id']}"), 404)
    forged = created["token"][:-1] + ("A" if created["token"][-1] != "A" else "B")
    assert_error(anonymous.get("/api/devices", headers=bearer(forged)), 401)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/auth/password", {"current_password": "x", "new_password": "yyyyyyyyy"}),
        ("post", "/auth/tokens", {"name": "more", "scope": "full"}),
        ("get", "/auth/tokens", None),
        ("get", "/auth/users", None),
        ("post", "/auth/users", {"name": "ci", "role": "admin", "service_account": True}),
        ("get", "/auth/sessions", None),
        ("post", "/auth/logout", None),
    ],
)
def test_a_token_cannot_manage_accounts_passwords_or_tokens(app, client, method, path, body):
    admin_token = token_client(app, make_token(client, "full")["token"])
    error = assert_error(getattr(admin_token, method)(path, json=body), 403)
    assert error["code"] == "api_token_not_allowed"
    assert "sign in with your password" in error["message"]


def test_the_session_endpoint_names_a_tokens_owner_and_scope(app, signed_in):
    engineer = signed_in("engineer")
    created = make_token(engineer, "run")
    body = token_client(app, created["token"]).get("/auth/session").get_json()
    assert body["user"]["id"] == user_id_of(engineer) and body["session"] is None
    assert (body["api_token"]["id"], body["api_token"]["scope"]) == (created["id"], "run")
    assert "token" not in body["api_token"]


def test_token_expiry_is_bounded_by_the_server(signed_in):
    engineer = signed_in("engineer")
    policy = engineer.get("/auth/tokens/policy").get_json()
    assert policy == {"max_days": 90, "allow_no_expiry": False}
    for days in [0, 91, None, "30"]:
        response = engineer.post(
            "/auth/tokens", json={"name": "x", "scope": "read", "expires_in_days": days}
        )
        assert_error(response, 422)
    assert_error(engineer.post("/auth/tokens", json={"name": "x", "scope": "root"}), 422)


def test_a_service_account_runs_with_its_token_and_cannot_sign_in(app, client, anonymous, lab):
    made = client.post(
        "/auth/users", json={"name": "ci-firmware", "role": "engineer", "service_account": True}
    )
    assert made.status_code == 201, made.get_json()
    account = made.get_json()
    assert account["service_account"] is True and account["email"] == "ci-firmware@service.invalid"
    login = anonymous.post("/auth/login", json={"email": account["email"], "password": "!"})
    assert_error(login, 401, "invalid_credentials")
    reset = client.post(f"/auth/users/{account['id']}/reset-password")
    assert_error(reset, 409)

    created = make_token(client, "run", user_id=account["id"], expires_in_days=90)
    assert created["user_id"] == account["id"]
    pipeline = token_client(app, created["token"])
    started = pipeline.post("/api/test-runs", json=start_body(lab, device=1))
    assert started.status_code in (201, 202), started.get_json()
    assert started.get_json()["started_by"] == "ci-firmware@service.invalid"
    listed = client.get("/auth/tokens", query_string={"user_id": account["id"]}).get_json()
    assert [t["id"] for t in listed["items"]] == [created["id"]]
    users = client.get("/auth/users").get_json()["items"]
    assert {u["email"]: u["service_account"] for u in users}["ci-firmware@service.invalid"]


def test_service_account_creation_is_checked(client, signed_in):
    with_password = {"name": "ci", "role": "viewer", "service_account": True, "password": "x" * 9}
    assert_error(client.post("/auth/users", json=with_password), 422)
    assert_error(client.post("/auth/users", json={"name": "Ada", "role": "viewer"}), 422)
    person = signed_in("engineer")
    refused = client.post(
        "/auth/tokens", json={"name": "x", "scope": "read", "user_id": user_id_of(person)}
    )
    assert_error(refused, 409)
    assert_error(person.post("/auth/users", json={"name": "ci", "role": "admin"}), 403)


def test_another_users_tokens_are_for_admins_only(signed_in, client):
    ada, bob = signed_in("engineer"), signed_in("engineer")
    created = make_token(ada, "read")
    assert_error(bob.get("/auth/tokens", query_string={"user_id": user_id_of(ada)}), 403)
    assert_error(bob.delete(f"/auth/tokens/{created['id']}"), 404)
    assert client.delete(f"/auth/tokens/{created['id']}").status_code == 204


def test_a_temporary_password_session_cannot_make_tokens(app, client, signed_in):
    engineer = signed_in("engineer", "temp@lab.example")
    reset = client.post(f"/auth/users/{user_id_of(engineer)}/reset-password").get_json()
    fresh = sign_in(app, "temp@lab.example", reset["temporary_password"])
    refused = fresh.post("/auth/tokens", json={"name": "x", "scope": "read"})
    assert_error(refused, 403, "password_change_required")


def test_the_openapi_document_describes_the_token_endpoints(anonymous):
    spec = anonymous.get("/api/openapi.json").get_json()
    assert {"/auth/tokens", "/auth/tokens/{token_id}"} <= set(spec["paths"])
    assert "dlp_" in spec["components"]["securitySchemes"]["bearerAuth"]["description"]


def test_an_event_stream_opened_with_a_token_ends_when_it_is_revoked(app, container, signed_in):
    from tests.support.live_streams import Stream

    container.config.stream_recheck_s.from_value(0.1)
    engineer = signed_in("engineer")
    created = make_token(engineer, "read")
    stream = Stream(token_client(app, created["token"]))
    assert stream.status == 200, stream.body
    assert engineer.delete(f"/auth/tokens/{created['id']}").status_code == 204
    name, data = stream.events()[-1]
    assert (name, data["reason"]) == ("session_ended", "session_ended")
