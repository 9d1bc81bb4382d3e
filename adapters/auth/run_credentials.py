"""Per-run callback credentials: an itsdangerous-signed token naming one run and when it
expires. A runner can call back for that run only, and only until the run's deadline plus a
grace period; nothing is stored server-side."""

from __future__ import annotations

from datetime import datetime

from itsdangerous import BadData, URLSafeSerializer

from application.errors import InvalidRunCredential

_SALT = "devicelab.runner-callback.v1"


class SignedRunCredentials:
    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=_SALT)

    def issue(self, run_id: str, expires_at: datetime) -> str:
        return self._serializer.dumps({"run": run_id, "exp": int(expires_at.timestamp())})

    def verify(self, token: str, now: datetime) -> str:
        try:
            claims = self._serializer.loads(token)
        except BadData:
            raise InvalidRunCredential("the runner credential is not valid") from None
        if not (isinstance(claims, dict) and isinstance(claims.get("run"), str)):
            raise InvalidRunCredential("the runner credential is not valid")
        expires = claims.get("exp")
        if not isinstance(expires, int) or now.timestamp() > expires:
            raise InvalidRunCredential("the runner credential has expired")
        return claims["run"]
