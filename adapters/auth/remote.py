"""Verifying tokens by asking the auth service over HTTP (DEVICELAB_AUTH_MODE=remote).

`GET {auth_url}/auth/session` with the caller's token (a session's or an API token): 200 names
the user (and, for an API token, its scope), 401 means the token is not (or no longer) valid. Answers are cached for DEVICELAB_AUTH_CACHE_S seconds (never past
the session's own expiry), which spares the auth service a call per request but means a
logout, revocation, disabled user or role change reaches this backend up to that many seconds
late. A cache of 0 asks every time. Failures are not cached.

Only the standard library (urllib): one GET with a short timeout needs no HTTP client."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from application.auth.errors import AuthServiceUnavailable, Unauthenticated
from application.auth.ports import NEVER, Principal
from domain.api_tokens import TokenScope
from domain.users import Role

MAX_TOKEN_LENGTH = 512


class RemoteTokenVerifier:
    def __init__(
        self,
        auth_url: str,
        cache_s: float = 30,
        timeout_s: float = 5,
        max_cached: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not auth_url.startswith(("http://", "https://")):
            raise ValueError(f"the auth service URL must be http(s)://…, got {auth_url!r}")
        self.session_url = auth_url.rstrip("/") + "/auth/session"
        self.cache_s, self.timeout_s, self.max_cached = cache_s, timeout_s, max_cached
        self._monotonic = monotonic
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_LENGTH or not _is_header_safe(token):
            raise Unauthenticated()
        key = hashlib.sha256(token.encode()).hexdigest()  # tokens are not kept in memory
        now = self._monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and now < cached[0]:
                return cached[1]
            self._cache.pop(key, None)
        principal = self._ask(token)
        # a session that must change its password is not cached: once changed, the
        # restriction ends with the next request, not a cache period later
        if self.cache_s > 0 and not principal.password_change_due:
            session_left = (principal.session_expires_at - datetime.now(UTC)).total_seconds()
            until = now + min(self.cache_s, max(session_left, 0))
            with self._lock:
                self._cache[key] = (until, principal)
                while len(self._cache) > self.max_cached:
                    self._cache.popitem(last=False)
        return principal

    def _ask(self, token: str) -> Principal:
        request = urllib.request.Request(
            self.session_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = json.loads(response.read(1024 * 1024))
        except urllib.error.HTTPError as error:
            if error.code == 401:
                raise Unauthenticated() from None
            raise AuthServiceUnavailable(
                f"the auth service answered {error.code} when asked about a token"
            ) from None
        except (OSError, ValueError) as error:  # URLError, timeouts, refused, bad JSON
            raise AuthServiceUnavailable(
                f"the auth service could not be asked about a token ({type(error).__name__})"
            ) from None
        try:
            user = body["user"]
            who = {
                "user_id": str(user["id"]),
                "email": str(user["email"]),
                "name": str(user["name"]),
                "role": Role(user["role"]),
            }
            api_token = body.get("api_token")
            if api_token:  # an API token: its scope narrows the owner's role
                expires = api_token.get("expires_at")
                return Principal(
                    **who,
                    session_id="",
                    session_expires_at=datetime.fromisoformat(expires) if expires else NEVER,
                    token_id=str(api_token["id"]),
                    scope=TokenScope(api_token["scope"]),
                )
            session = body["session"]
            return Principal(
                **who,
                session_id=str(session["id"]),
                session_expires_at=datetime.fromisoformat(session["expires_at"]),
                password_change_due=user.get("must_change_password") is True,
            )
        except (KeyError, TypeError, ValueError):
            raise AuthServiceUnavailable("the auth service gave an unexpected answer") from None


def _is_header_safe(token: str) -> bool:
    return token.isascii() and token.isprintable() and " " not in token


class AuthServiceCheck:
    """Readiness: does the remote auth service answer?"""

    name = "auth_service"
    critical = True  # no token can be checked without it

    def __init__(self, auth_url: str, timeout_s: float = 3) -> None:
        self.health_url = auth_url.rstrip("/") + "/auth/health"
        self.timeout_s = timeout_s

    def check(self) -> str | None:
        try:
            with urllib.request.urlopen(self.health_url, timeout=self.timeout_s) as response:
                return None if response.status == 200 else f"answered {response.status}"
        except (OSError, ValueError) as error:
            return f"unreachable ({type(error).__name__})"
