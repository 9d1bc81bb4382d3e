"""The auth service over HTTP, and the API's verification of every call: on every backend."""

from __future__ import annotations

import statistics
import time

import pytest
from dependency_injector import providers

from adapters.auth.passwords import Argon2PasswordHasher
from application.auth.users import CreateUserRequest
from entrypoints.settings import Settings
from entrypoints.wsgi import create_app, create_container
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in

PUBLIC_API_PATHS = {"/api/health", "/api/ready"}


def assert_error(response, status, code=None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"code", "message", "errors"}, body
    assert isinstance(body["message"], str) and body["message"]
    if code:
        assert body["code"] == code, body
    return body


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# -- login, session, logout ----------------------------------------------------------------


def test_login_answers_a_bearer_token_that_opens_the_api(client, anonymous):
    response = anonymous.post(
        "/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["user"]["email"] == ADMIN_EMAIL and body["user"]["role"] == "admin"
    assert set(body["user"]) == {"id", "email", "name", "role", "must_change_password"}
    assert body["user"]["must_change_password"] is False
    assert body["expires_at"] == body["session"]["expires_at"]
    assert body["session"]["current"] is True
    assert anonymous.get("/api/devices", headers=bearer(body["token"])).status_code == 200


def test_the_session_endpoint_names_the_user_and_the_session(client):
    body = client.get("/auth/session").get_json()
    assert body["user"]["email"] == ADMIN_EMAIL
    assert body["session"]["current"] is True
    assert {"id", "created_at", "last_used_at", "expires_at", "absolute_expires_at"} <= set(
        body["session"]
    )


def test_a_token_after_logout_is_refused_everywhere(client):
    assert client.post("/auth/logout").status_code == 204
    for path in ["/api/devices", "/auth/session", "/auth/sessions"]:
        response = client.get(path)
        body = assert_error(response, 401, "unauthenticated")
        assert "sign in again" in body["message"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(client.post("/auth/logout"), 401)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-10] + ("A" if t[-10] != "A" else "B") + t[-9:],
        lambda t: "A" + t[1:] if t[0] != "A" else "B" + t[1:],
        lambda t: t.split(".")[0],
        lambda t: t.replace(".", ".."),
    ],
    ids=["signature", "secret", "unsigned", "extra-dot"],
)
def test_a_tampered_token_is_refused(client, anonymous, mangle):
    assert_error(anonymous.get("/api/devices", headers=bearer(mangle(client.token))), 401)


def test_a_disabled_users_token_is_refused_at_once(client, signed_in):
    engineer = signed_in("engineer", "eng@lab.example")
    assert engineer.get("/api/devices").status_code == 200
    user_id = engineer.get("/auth/session").get_json()["user"]["id"]

    patched = client.patch(f"/auth/users/{user_id}", json={"disabled": True})
    assert patched.status_code == 200 and patched.get_json()["disabled"] is True
    assert_error(engineer.get("/api/devices"), 401)
    again = engineer.post(
        "/auth/login", json={"email": "eng@lab.example", "password": "a-fine-password"}
    )
    assert_error(again, 401, "invalid_credentials")


def test_role_changes_apply_at_once(client, signed_in):
    viewer = signed_in("viewer")
    assert_error(viewer.post("/api/environments", json={"name": "chamber"}), 403)
    user_id = viewer.get("/auth/session").get_json()["user"]["id"]
    client.patch(f"/auth/users/{user_id}", json={"role": "engineer"})
    assert viewer.post("/api/environments", json={"name": "chamber"}).status_code == 201


# -- roles -----------------------------------------------------------------------------------


def test_a_viewer_reads_but_never_writes(signed_in, lab):
    viewer = signed_in("viewer")
    device = lab["devices"][0]["id"]
    for path in ["/api/devices", f"/api/devices/{device}", "/api/test-cases", "/api/test-runs"]:
        assert viewer.get(path).status_code == 200, path
    writes = [
        ("post", "/api/devices", {"name": "x"}),
        ("patch", f"/api/devices/{device}", {"name": "y"}),
        ("delete", f"/api/devices/{device}", None),
        ("post", f"/api/devices/{device}/status", {"status": "offline"}),
        ("post", f"/api/devices/{device}/heartbeat", {}),
        ("post", "/api/test-cases", {"name": "x", "criteria": []}),
        ("post", "/api/environments", {"name": "x"}),
        (
            "post",
            "/api/test-runs",
            {
                "test_case_ids": [lab["cases"][0]["id"]],
                "environment_id": lab["environment"]["id"],
                "device_ids": [device],
            },
        ),
        ("get", "/auth/users", None),
    ]
    for method, path, body in writes:
        response = getattr(viewer, method)(path, json=body)
        error = assert_error(response, 403, "forbidden")
        assert "viewer" in error["message"], (method, path)
    assert viewer.get(f"/api/devices/{device}").get_json()["name"] == "meter-0"


def test_an_engineer_runs_tests_but_cannot_manage_devices(signed_in, lab):
    engineer = signed_in("engineer")
    device = lab["devices"][0]["id"]
    assert_error(engineer.post("/api/devices", json={"name": "new-meter"}), 403)
    assert_error(engineer.patch(f"/api/devices/{device}", json={"name": "renamed"}), 403)
    assert_error(engineer.delete(f"/api/devices/{device}"), 403)
    assert_error(engineer.get("/auth/users"), 403)

    assert engineer.post(f"/api/devices/{device}/heartbeat", json={}).status_code == 200
    offline = engineer.post(f"/api/devices/{device}/status", json={"status": "offline"})
    assert offline.status_code == 200
    engineer.post(f"/api/devices/{device}/status", json={"status": "available"})
    case = engineer.post(
        "/api/test-cases",
        json={"name": "ripple", "criteria": [{"metric": "v", "condition": "<", "threshold": 1}]},
    )
    assert case.status_code == 201
    assert engineer.post("/api/environments", json={"name": "oven"}).status_code == 201

    run = engineer.post(
        "/api/test-runs",
        json={
            "test_case_ids": [case.get_json()["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [device],
        },
    )
    assert run.status_code == 201, run.get_json()
    me = engineer.get("/auth/session").get_json()["user"]["email"]
    assert run.get_json()["started_by"] == me
    cancelled = engineer.post(f"/api/test-runs/{run.get_json()['id']}/cancel", json={})
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "aborted"


# -- no /api data without a token ------------------------------------------------------------


def _operations():
    container = create_container(
        Settings.from_env({"DEVICELAB_SECRET_KEY": "collect-only-secret-key-0123456789-abcdef"})
    )
    try:
        spec = create_app(container).test_client().get("/api/openapi.json").get_json()
    finally:
        container.unwire()
    operations = []
    for path, item in spec["paths"].items():
        if not path.startswith("/api/") or path in PUBLIC_API_PATHS:
            continue
        if path.startswith("/api/runner/"):  # the runner's own credential; see its tests
            continue
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                operations.append((method, path))
    return spec, operations


SPEC, OPERATIONS = _operations()


def test_the_spec_lists_what_the_api_serves():
    paths = {path for _, path in OPERATIONS}
    assert {"/api/devices", "/api/test-runs/{run_id}/cancel", "/api/test-cases"} <= paths
    assert len(OPERATIONS) >= 15


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_api_operation_answers_without_a_valid_token(anonymous, lab, method, path):
    concrete = path
    for name, value in {
        "{device_id}": lab["devices"][0]["id"],
        "{test_case_id}": lab["cases"][0]["id"],
        "{environment_id}": lab["environment"]["id"],
        "{run_id}": "some-run",
    }.items():
        concrete = concrete.replace(name, value)
    call = getattr(anonymous, method)
    body = {} if method in ("post", "patch", "put") else None
    for headers in ({}, bearer("forged.token")):
        response = call(concrete, json=body, headers=headers)
        error = assert_error(response, 401, "unauthenticated")
        assert set(error) == {"code", "message", "errors"}


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_api_operation_declares_the_bearer_scheme_and_its_errors(method, path):
    operation = SPEC["paths"][path][method]
    assert operation["security"] == [{"bearerAuth": []}]
    assert "401" in operation["responses"]
    if method != "get":
        assert "403" in operation["responses"]
        assert "admin" in operation["description"]


def test_public_endpoints_and_the_docs_need_no_token(anonymous):
    assert anonymous.get("/api/health").status_code == 200
    assert anonymous.get("/api/ready").status_code == 200
    assert anonymous.get("/api/docs").status_code == 200
    spec = anonymous.get("/api/openapi.json").get_json()
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path in PUBLIC_API_PATHS | {"/auth/login"}:
        assert "security" not in spec["paths"][path]["get" if path != "/auth/login" else "post"]
    assert spec["paths"]["/auth/users"]["post"]["security"] == [{"bearerAuth": []}]


# -- brute force and enumeration ------------------------------------------------------------


@pytest.fixture
def limited(container):
    """The app with a login limit of 3 failed attempts a minute."""
    container.config.set("login_rate_limit", "3/minute")
    app = create_app(container)
    app.testing = True
    return app


def _login(client, email, password, ip="10.1.1.1"):
    return client.post(
        "/auth/login",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_too_many_failures_for_one_account_get_429_with_retry_after(limited, container):
    container.create_user()(
        CreateUserRequest("ada@lab.example", "Ada", "engineer", "right-password")
    )
    client = limited.test_client()
    for attempt in range(3):  # from different addresses: the account's own limit counts
        assert_error(_login(client, "ada@lab.example", "wrong", ip=f"10.0.0.{attempt}"), 401)
    blocked = _login(client, "ada@lab.example", "right-password", ip="10.0.0.99")
    body = assert_error(blocked, 429, "too_many_requests")
    retry_after = int(blocked.headers["Retry-After"])
    assert 0 < retry_after <= 60
    assert body["retry_after"] == retry_after
    # another account is not affected
    container.create_user()(CreateUserRequest("bob@lab.example", "Bob", "viewer", "bobs-password"))
    assert _login(client, "bob@lab.example", "bobs-password", ip="10.0.0.98").status_code == 200


def test_too_many_failures_from_one_address_get_429(limited):
    client = limited.test_client()
    for attempt in range(3):  # a different account each time: the address's limit counts
        assert_error(_login(client, f"guess{attempt}@lab.example", "wrong"), 401)
    assert_error(_login(client, "guess9@lab.example", "wrong"), 429)
    assert _login(client, ADMIN_EMAIL, ADMIN_PASSWORD, ip="10.2.2.2").status_code in (200, 401)


def test_a_forged_forwarded_for_does_not_dodge_the_address_limit(limited):
    client = limited.test_client()
    for attempt in range(3):
        forged = {"X-Forwarded-For": f"192.0.2.{attempt}"}
        response = client.post(
            "/auth/login",
            json={"email": f"g{attempt}@lab.example", "password": "x" * 9},
            headers=forged,
        )
        assert response.status_code == 401
    blocked = client.post(
        "/auth/login",
        json={"email": "g9@lab.example", "password": "x" * 9},
        headers={"X-Forwarded-For": "192.0.2.99"},
    )
    assert_error(blocked, 429)


def test_behind_a_trusted_proxy_clients_are_told_apart_by_forwarded_for(container):
    container.config.set("login_rate_limit", "3/minute")
    container.config.set("trusted_proxies", 1)
    client = create_app(container).test_client()

    emails = (f"guess{n}@lab.example" for n in range(100))  # one each: only the IP counts

    def attempt(client_ip):
        return client.post(
            "/auth/login",
            json={"email": next(emails), "password": "x" * 9},
            headers={"X-Forwarded-For": client_ip},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},  # the proxy
        )

    assert [attempt("198.51.100.1").status_code for _ in range(4)] == [401, 401, 401, 429]
    assert attempt("198.51.100.2").status_code == 401  # another client behind the same proxy


def test_successful_logins_do_not_use_up_the_limit(limited, container):
    container.create_user()(
        CreateUserRequest("ada@lab.example", "Ada", "engineer", "right-password")
    )
    client = limited.test_client()
    for _ in range(6):
        assert _login(client, "ada@lab.example", "right-password").status_code == 200


def test_refused_password_changes_are_limited_too(limited, container):
    container.create_user()(
        CreateUserRequest("ada@lab.example", "Ada", "engineer", "right-password")
    )
    ada = sign_in(limited, "ada@lab.example", "right-password")
    for _ in range(3):
        wrong = ada.post(
            "/auth/password", json={"current_password": "guess", "new_password": "new-password"}
        )
        assert_error(wrong, 422)
    assert_error(
        ada.post(
            "/auth/password",
            json={"current_password": "right-password", "new_password": "new-password"},
        ),
        429,
    )


def test_unknown_email_and_wrong_password_look_the_same(client, anonymous):
    unknown = anonymous.post(
        "/auth/login", json={"email": "nobody@lab.example", "password": "x" * 12}
    )
    wrong = anonymous.post("/auth/login", json={"email": ADMIN_EMAIL, "password": "x" * 12})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.get_data() == wrong.get_data()
    assert dict(unknown.headers) == dict(wrong.headers)


def test_unknown_email_and_wrong_password_take_about_as_long(container, signed_in, anonymous):
    """With the real Argon2 parameters, both cost one verification (the unknown email one
    against a dummy hash); the database lookup is noise beside it."""
    container.password_hasher.override(providers.Object(Argon2PasswordHasher()))
    signed_in("viewer", "real@lab.example", "the-real-password")

    def duration(email, attempt):
        started = time.perf_counter()
        response = anonymous.post(
            "/auth/login",
            json={"email": email, "password": "bad-guess"},
            environ_base={"REMOTE_ADDR": f"10.9.0.{attempt}"},  # stay below the IP limit
        )
        assert response.status_code == 401
        return time.perf_counter() - started

    duration("warm-up@lab.example", 0)
    samples: dict[str, list[float]] = {"nobody@lab.example": [], "real@lab.example": []}
    for attempt in range(1, 8):  # interleaved, so a busy machine slows both alike
        for email, durations in samples.items():
            durations.append(duration(email, attempt))
    unknown = statistics.median(samples["nobody@lab.example"])
    wrong = statistics.median(samples["real@lab.example"])
    # without the dummy hash an unknown email would answer some 10-50 times faster; the wide
    # band keeps a busy machine from failing the test
    assert 1 / 3 < unknown / wrong < 3, (unknown, wrong)


# -- one's own sessions and password ---------------------------------------------------------


def test_listing_and_revoking_ones_sessions(app, client):
    laptop = sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    sessions = client.get("/auth/sessions").get_json()["items"]
    assert len(sessions) == 2
    mine = [s for s in sessions if s["current"]]
    other = [s for s in sessions if not s["current"]]
    assert len(mine) == len(other) == 1

    assert client.delete(f"/auth/sessions/{other[0]['id']}").status_code == 204
    assert_error(laptop.get("/api/devices"), 401)
    assert client.get("/api/devices").status_code == 200
    assert_error(client.delete(f"/auth/sessions/{other[0]['id']}"), 404, "not_found")


def test_sessions_name_their_address_and_all_others_can_be_ended_at_once(app, client):
    laptop = sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    phone = sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    sessions = client.get("/auth/sessions").get_json()["items"]
    assert len(sessions) == 3
    assert {s["client_ip"] for s in sessions} == {"127.0.0.1"}  # the test client's address

    ended = client.post("/auth/sessions/end-others")
    assert ended.status_code == 200 and ended.get_json() == {"sessions_ended": 2}
    assert_error(laptop.get("/api/devices"), 401)
    assert_error(phone.get("/auth/session"), 401)
    assert client.get("/api/devices").status_code == 200
    assert [s["current"] for s in client.get("/auth/sessions").get_json()["items"]] == [True]


def test_someone_elses_session_is_not_found(client, signed_in):
    viewer = signed_in("viewer")
    admin_session = client.get("/auth/session").get_json()["session"]["id"]
    assert_error(viewer.delete(f"/auth/sessions/{admin_session}"), 404)
    assert client.get("/auth/session").status_code == 200


def test_changing_the_password_ends_the_other_sessions(app, client):
    other = sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    changed = client.post(
        "/auth/password",
        json={"current_password": ADMIN_PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert changed.status_code == 200 and changed.get_json() == {"other_sessions_ended": 1}
    assert_error(other.get("/api/devices"), 401)
    assert client.get("/api/devices").status_code == 200
    assert_error(
        other.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}), 401
    )
    sign_in(app, ADMIN_EMAIL, "a brand new passphrase")


# -- users (admin) ---------------------------------------------------------------------------


def test_admins_manage_users(client, anonymous):
    created = client.post(
        "/auth/users",
        json={"email": "New@Lab.example", "name": "New", "role": "viewer", "password": "pw-123456"},
    )
    assert created.status_code == 201
    user = created.get_json()
    assert (user["email"], user["role"], user["disabled"]) == ("new@lab.example", "viewer", False)
    assert "pw-123456" not in str(user) and "argon2" not in str(user)
    assert not any("hash" in key or key == "password" for key in user)

    duplicate = client.post(
        "/auth/users",
        json={
            "email": "new@lab.example",
            "name": "Twin",
            "role": "viewer",
            "password": "pw-123456",
        },
    )
    assert_error(duplicate, 409, "already_exists")
    listed = client.get("/auth/users?limit=1").get_json()
    assert len(listed["items"]) == 1 and listed["next_cursor"]
    assert client.get(f"/auth/users/{user['id']}").get_json()["email"] == "new@lab.example"
    assert client.patch(f"/auth/users/{user['id']}", json={"name": "Renamed"}).status_code == 200
    assert (
        anonymous.post(
            "/auth/login", json={"email": "new@lab.example", "password": "pw-123456"}
        ).status_code
        == 200
    )


def test_the_last_admin_cannot_lock_everyone_out(client):
    me = client.get("/auth/session").get_json()["user"]["id"]
    assert_error(client.patch(f"/auth/users/{me}", json={"role": "viewer"}), 409)
    assert_error(client.patch(f"/auth/users/{me}", json={"disabled": True}), 409)
    assert client.get("/auth/users").status_code == 200


def test_an_unknown_user_is_not_found(client):
    assert_error(client.patch("/auth/users/nobody", json={"name": "x"}), 404)
    assert_error(client.get("/auth/users/nobody"), 404)
    assert_error(client.post("/auth/users/nobody/reset-password"), 404)


# -- an admin's password reset --------------------------------------------------------------


def test_a_reset_password_must_be_changed_before_anything_else(app, client, signed_in, lab):
    engineer = signed_in("engineer", "eng@lab.example")
    user_id = engineer.get("/auth/session").get_json()["user"]["id"]

    reset = client.post(f"/auth/users/{user_id}/reset-password")
    assert reset.status_code == 200, reset.get_json()
    assert reset.headers["Cache-Control"] == "no-store"
    body = reset.get_json()
    temporary = body["temporary_password"]
    assert len(temporary) >= 12 and body["sessions_ended"] == 1
    assert body["user"]["must_change_password"] is True
    assert_error(engineer.get("/api/devices"), 401)  # the reset ended the session
    assert_error(  # and the old password is gone
        app.test_client().post(
            "/auth/login", json={"email": "eng@lab.example", "password": "a-fine-password"}
        ),
        401,
    )

    restricted = sign_in(app, "eng@lab.example", temporary)
    who = restricted.get("/auth/session")
    assert who.status_code == 200 and who.get_json()["user"]["must_change_password"] is True
    for method, path in [
        ("get", "/api/devices"),
        ("get", f"/api/test-cases/{lab['cases'][0]['id']}"),
        ("post", "/api/environments"),
        ("get", "/auth/sessions"),
        ("post", "/auth/sessions/end-others"),
    ]:
        response = getattr(restricted, method)(path, json={"name": "x"})
        body = assert_error(response, 403, "password_change_required")
        assert "temporary password" in body["message"], path

    changed = restricted.post(
        "/auth/password",
        json={"current_password": temporary, "new_password": "my very own passphrase"},
    )
    assert changed.status_code == 200, changed.get_json()
    assert restricted.get("/api/devices").status_code == 200
    me = restricted.get("/auth/session").get_json()["user"]
    assert me["must_change_password"] is False
    assert_error(  # the temporary password was good for one change only
        app.test_client().post(
            "/auth/login", json={"email": "eng@lab.example", "password": temporary}
        ),
        401,
    )


def test_a_restricted_session_can_still_log_out(app, client, signed_in):
    viewer = signed_in("viewer", "view@lab.example")
    user_id = viewer.get("/auth/session").get_json()["user"]["id"]
    temporary = client.post(f"/auth/users/{user_id}/reset-password").get_json()[
        "temporary_password"
    ]
    restricted = sign_in(app, "view@lab.example", temporary)
    assert restricted.post("/auth/logout").status_code == 204
    assert_error(restricted.get("/auth/session"), 401)


def test_only_admins_reset_passwords_and_not_their_own(client, signed_in):
    engineer = signed_in("engineer")
    me = client.get("/auth/session").get_json()["user"]["id"]
    assert_error(engineer.post(f"/auth/users/{me}/reset-password"), 403, "forbidden")
    body = assert_error(client.post(f"/auth/users/{me}/reset-password"), 409)
    assert "change it" in body["message"]
    assert client.get("/api/devices").status_code == 200  # nothing happened to the admin
