"""Whatever a client sends to the auth endpoints, or as a token, it gets a clear 4xx in the one
error shape, never a 500. None of this depends on the storage, so it runs on the in-memory
backend only (the backend-dependent auth tests are in test_auth_http.py)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD


def assert_error(response, status, code=None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"code", "message", "errors"}, body
    if code:
        assert body["code"] == code, body
    return body


@pytest.fixture
def backend():
    return None  # in memory


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer    ",
        "Basic YWRtaW46YWRtaW4=",
        "Token abc",
        "Bearer " + "x" * 10_000,
        "Bearer not.a.token",
        "Bearer ü-ñ-ï.ç",
        "Bearer \x00\x01",
    ],
)
def test_no_or_garbage_authorization_is_401_never_500(anonymous, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_error(anonymous.get("/api/devices", headers=headers), 401, "unauthenticated")
    assert_error(anonymous.post("/api/devices", json={"name": "x"}, headers=headers), 401)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {},
        {"email": ADMIN_EMAIL},
        {"password": "x" * 10},
        {"email": 12, "password": "x" * 10},
        {"email": ADMIN_EMAIL, "password": None},
        {"email": ADMIN_EMAIL, "password": "x" * 129},
        {"email": "a" * 300 + "@lab.example", "password": "x" * 10},
        {"email": ADMIN_EMAIL, "password": "x" * 10, "remember": True},
    ],
)
def test_malformed_logins_are_422(anonymous, body):
    assert_error(anonymous.post("/auth/login", json=body), 422, "validation_error")


def test_login_with_broken_json_is_400(anonymous):
    response = anonymous.post("/auth/login", data="{nope", content_type="application/json")
    assert_error(response, 400)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "x@lab.example", "name": "X", "role": "root", "password": "pw-123456"}, "role"),
        (
            {"email": "x@lab.example", "name": "X", "role": "viewer", "password": "short"},
            "password",
        ),
        (
            {"email": "x@lab.example", "name": "X", "role": "viewer", "password": "p" * 129},
            "password",
        ),
        (
            {"email": "not-an-email", "name": "X", "role": "viewer", "password": "pw-123456"},
            "email",
        ),
        ({"email": "x@lab.example", "name": "", "role": "viewer", "password": "pw-123456"}, "name"),
        ({"email": "x@lab.example", "name": "X", "role": "viewer"}, "password"),
    ],
)
def test_invalid_new_users_are_422_naming_the_field(client, body, field):
    error = assert_error(client.post("/auth/users", json=body), 422)
    assert field in error["errors"], error


@pytest.mark.parametrize(
    "body",
    [{"disabled": "maybe"}, {"role": "god"}, {"name": ""}, {"unknown": 1}, ["disabled"]],
)
def test_invalid_user_patches_are_422(client, body):
    me = client.get("/auth/session").get_json()["user"]["id"]
    assert_error(client.patch(f"/auth/users/{me}", json=body), 422)


def test_a_user_patch_without_changes_is_422(client):
    me = client.get("/auth/session").get_json()["user"]["id"]
    assert_error(client.patch(f"/auth/users/{me}"), 422, "validation_error")
    body = assert_error(client.patch(f"/auth/users/{me}", json={}), 422, "validation_error")
    assert "nothing to change" in body["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"current_password": ADMIN_PASSWORD},
        {"current_password": ADMIN_PASSWORD, "new_password": "short"},
        {"current_password": ADMIN_PASSWORD, "new_password": "n" * 129},
        {"current_password": "x" * 5000, "new_password": "a new passphrase"},
        {"current_password": 5, "new_password": "a new passphrase"},
    ],
)
def test_invalid_password_changes_are_422(client, body):
    assert_error(client.post("/auth/password", json=body), 422)
    assert client.get("/api/devices").status_code == 200


def test_a_forged_sessions_cursor_is_422(client):
    assert_error(client.get("/auth/sessions?cursor=garbage"), 422)
    assert_error(client.get("/auth/users?cursor=garbage&limit=0"), 422)
