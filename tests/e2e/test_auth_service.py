"""The auth service deployed on its own (entrypoints.auth_wsgi) and a backend that verifies
tokens by asking it over HTTP (DEVICELAB_AUTH_MODE=remote), each in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from dependency_injector import providers

from adapters.auth.remote import RemoteTokenVerifier
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from adapters.persistence.schema import upgrade_auth_schema
from application.auth.users import CreateUserRequest
from entrypoints.auth_wsgi import create_auth_app
from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_app, create_container

SECRET = "auth-service-tests-secret-key-0123456789-abc"
SERVE = (
    "import sys; from werkzeug.serving import run_simple; "
    "from entrypoints.auth_wsgi import create_auth_app; "
    "run_simple('127.0.0.1', int(sys.argv[1]), create_auth_app(), threaded=True)"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the auth service exited: {process.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/auth/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the auth service did not come up in 20 s")


@pytest.fixture
def auth_service(tmp_path) -> Iterator[SimpleNamespace]:
    """The auth service in a process of its own, on its own SQLite database."""
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    upgrade_auth_schema(url)
    env = {
        "DEVICELAB_DATA_DIR": str(tmp_path / "auth"),
        "DEVICELAB_DATABASE_URL": url,
        "DEVICELAB_SECRET_KEY": SECRET,
        "DEVICELAB_LOG_LEVEL": "WARNING",
    }
    users = create_container(Settings.from_env(env))
    users.unwire()

    def add_user(email: str, role: str) -> None:
        users.create_user()(CreateUserRequest(email, email.split("@")[0], role, "the-password"))

    def reset_password(email: str) -> str:
        user = users.find_user_by_email()(email)
        return users.reset_password()(user.id).temporary_password

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process)
        yield SimpleNamespace(url=base, add_user=add_user, reset_password=reset_password)
    finally:
        process.terminate()
        process.wait(timeout=10)
        dispose_engines(users)


def _call(url: str, method: str = "GET", body: bytes | None = None, token: str = "") -> tuple:
    import json

    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _login(service, email: str) -> str:
    import json

    body = json.dumps({"email": email, "password": "the-password"}).encode()
    status, answer = _call(f"{service.url}/auth/login", "POST", body)
    assert status == 200, answer
    return answer["token"]


def _backend(tmp_path, auth_url: str, cache_s: str):
    """The lab's API, verifying tokens remotely; its lab data in memory."""
    env = {
        "DEVICELAB_DATA_DIR": str(tmp_path / "api"),
        "DEVICELAB_SECRET_KEY": "another-backend-secret-key-0123456789-xyz",
        "DEVICELAB_AUTH_MODE": "remote",
        "DEVICELAB_AUTH_URL": auth_url,
        "DEVICELAB_AUTH_CACHE_S": cache_s,
    }
    container = create_container(Settings.from_env(env))
    container.uow.override(providers.Factory(InMemoryUnitOfWork, InMemoryStore()))
    app = create_app(container)
    app.testing = True
    return container, app.test_client()


def test_a_token_from_the_auth_service_opens_the_remote_backend(auth_service, tmp_path):
    auth_service.add_user("eng@lab.example", "engineer")
    auth_service.add_user("view@lab.example", "viewer")
    container, api = _backend(tmp_path, auth_service.url, cache_s="0")
    try:
        engineer, viewer = (
            _login(auth_service, "eng@lab.example"),
            _login(auth_service, "view@lab.example"),
        )
        ok = api.post(
            "/api/environments",
            json={"name": "chamber"},
            headers={"Authorization": f"Bearer {engineer}"},
        )
        assert ok.status_code == 201
        denied = api.post(
            "/api/environments",
            json={"name": "oven"},
            headers={"Authorization": f"Bearer {viewer}"},
        )
        assert denied.status_code == 403 and denied.get_json()["code"] == "forbidden"

        # without a cache, logging out at the auth service ends the token here at once
        assert _call(f"{auth_service.url}/auth/logout", "POST", b"{}", engineer)[0] == 204
        gone = api.get("/api/environments", headers={"Authorization": f"Bearer {engineer}"})
        assert gone.status_code == 401 and gone.get_json()["code"] == "unauthenticated"
        assert (
            api.get("/api/environments", headers={"Authorization": "Bearer forged.x"}).status_code
            == 401
        )

        # this backend does not serve /auth: the auth service does
        assert api.post("/auth/login", json={}).status_code in (404, 405)
        assert "/auth/login" not in api.get("/api/openapi.json").get_json()["paths"]
        ready = api.get("/api/ready").get_json()
        assert ready["checks"]["auth_service"] == "ok"
    finally:
        container.unwire()


def test_the_cache_delays_a_logout_by_at_most_its_ttl(auth_service, tmp_path):
    auth_service.add_user("eng@lab.example", "engineer")
    container, api = _backend(tmp_path, auth_service.url, cache_s="30")
    now = [1000.0]
    verifier = RemoteTokenVerifier(auth_service.url, cache_s=30, monotonic=lambda: now[0])
    container.token_verifier.override(providers.Object(verifier))
    container.authenticator.reset()
    try:
        api = create_app(container).test_client()
        token = _login(auth_service, "eng@lab.example")
        headers = {"Authorization": f"Bearer {token}"}
        assert api.get("/api/devices", headers=headers).status_code == 200
        assert _call(f"{auth_service.url}/auth/logout", "POST", b"{}", token)[0] == 204

        now[0] += 29  # still cached: the revocation delay the README documents
        assert api.get("/api/devices", headers=headers).status_code == 200
        now[0] += 2
        assert api.get("/api/devices", headers=headers).status_code == 401
    finally:
        container.unwire()


def test_a_remote_backend_holds_a_temporary_password_session_to_the_change(auth_service, tmp_path):
    import json

    auth_service.add_user("eng@lab.example", "engineer")
    temporary = auth_service.reset_password("eng@lab.example")
    container, api = _backend(tmp_path, auth_service.url, cache_s="30")
    try:
        body = json.dumps({"email": "eng@lab.example", "password": temporary}).encode()
        status, answer = _call(f"{auth_service.url}/auth/login", "POST", body)
        assert status == 200 and answer["user"]["must_change_password"] is True
        headers = {"Authorization": f"Bearer {answer['token']}"}
        refused = api.get("/api/devices", headers=headers)
        assert refused.status_code == 403
        assert refused.get_json()["code"] == "password_change_required"

        change = json.dumps({"current_password": temporary, "new_password": "my own one!"})
        assert (
            _call(f"{auth_service.url}/auth/password", "POST", change.encode(), answer["token"])[0]
            == 200
        )
        # the restricted answer was not cached: the change counts here at once
        assert api.get("/api/devices", headers=headers).status_code == 200
    finally:
        container.unwire()


def test_an_unreachable_auth_service_is_503_not_500(tmp_path):
    container, api = _backend(tmp_path, f"http://127.0.0.1:{_free_port()}", cache_s="0")
    try:
        response = api.get("/api/devices", headers={"Authorization": "Bearer some.token"})
        assert response.status_code == 503
        body = response.get_json()
        assert body["code"] == "auth_unavailable"
        assert set(body) == {"code", "message", "errors", "retry_after"}
        assert response.headers["Retry-After"] == str(body["retry_after"])
        assert api.get("/api/ready").status_code == 503
        assert api.get("/api/devices").status_code == 401  # no token: no need to ask
    finally:
        container.unwire()


def test_the_auth_app_alone_serves_only_auth(tmp_path):
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    upgrade_auth_schema(url)
    container = create_container(
        Settings.from_env({"DEVICELAB_DATABASE_URL": url, "DEVICELAB_SECRET_KEY": SECRET})
    )
    try:
        client = create_auth_app(container).test_client()
        assert client.get("/api/devices").status_code == 404
        assert client.get("/auth/health").get_json() == {"status": "ok"}
        assert client.get("/auth/docs").status_code == 200
        spec = client.get("/auth/openapi.json").get_json()
        assert spec["info"]["title"] == "devicelab auth"
        assert set(spec["paths"]) >= {"/auth/login", "/auth/session", "/auth/users/{user_id}"}
        assert not any(path.startswith("/api") for path in spec["paths"])
        assert "bearerAuth" in spec["components"]["securitySchemes"]
        assert client.get("/auth/session").status_code == 401
    finally:
        container.unwire()
        dispose_engines(container)


def test_the_auth_app_needs_the_secret_key(tmp_path):
    from entrypoints.settings import SettingsError

    container = create_container(Settings.from_env({"DEVICELAB_DATA_DIR": str(tmp_path)}))
    try:
        with pytest.raises(SettingsError, match="DEVICELAB_SECRET_KEY"):
            create_auth_app(container)
    finally:
        container.unwire()


def test_an_open_stream_ends_once_the_cached_session_runs_out(auth_service, tmp_path):
    """In remote mode a stream's re-check asks the verifier, through its cache: a logout
    ends the stream at most DEVICELAB_AUTH_CACHE_S + DEVICELAB_STREAM_RECHECK_S later."""
    from tests.support.live_streams import Stream

    auth_service.add_user("wall@lab.example", "viewer")
    container, _ = _backend(tmp_path, auth_service.url, cache_s="30")
    container.config.stream_recheck_s.from_value(0.1)
    now = [1000.0]
    verifier = RemoteTokenVerifier(auth_service.url, cache_s=30, monotonic=lambda: now[0])
    container.token_verifier.override(providers.Object(verifier))
    container.authenticator.reset()
    try:
        api = create_app(container).test_client()
        token = _login(auth_service, "wall@lab.example")
        stream = Stream(api, Authorization=f"Bearer {token}")
        assert stream.status == 200, stream.body
        assert _call(f"{auth_service.url}/auth/logout", "POST", b"{}", token)[0] == 204
        now[0] += 31  # the cached answer has run out; the next re-check asks again
        name, data = stream.events()[-1]
        assert (name, data["reason"]) == ("session_ended", "session_ended")
    finally:
        container.unwire()


def test_a_remote_backend_honours_an_api_tokens_scope_and_revocation(auth_service, tmp_path):
    import json

    auth_service.add_user("eng@lab.example", "engineer")
    session = _login(auth_service, "eng@lab.example")
    body = json.dumps({"name": "ci", "scope": "read", "expires_in_days": 1}).encode()
    status, created = _call(f"{auth_service.url}/auth/tokens", "POST", body, session)
    assert status == 201, created
    container, api = _backend(tmp_path, auth_service.url, cache_s="0")
    try:
        headers = {"Authorization": f"Bearer {created['token']}"}
        assert api.get("/api/environments", headers=headers).status_code == 200
        denied = api.post("/api/environments", json={"name": "oven"}, headers=headers)
        assert denied.status_code == 403 and "scope (read)" in denied.get_json()["message"]
        revoked = _call(f"{auth_service.url}/auth/tokens/{created['id']}", "DELETE", None, session)
        assert revoked[0] == 204
        assert api.get("/api/environments", headers=headers).status_code == 401
    finally:
        container.unwire()
