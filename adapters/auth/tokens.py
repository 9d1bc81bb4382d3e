"""Session tokens signed with itsdangerous: `<secret>.<HMAC-SHA256 signature>`.

The signature lets a tampered or made-up token be refused without asking the database. It
does not make a token expire: sessions expire in the store, where logout can end them."""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, Signer

SALT = "devicelab.session-token"


class SessionTokenSigner:
    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < 32:
            raise ValueError("the secret key must be at least 32 characters")
        self._signer = Signer(
            secret_key, salt=SALT, key_derivation="hmac", digest_method=hashlib.sha256
        )

    def sign(self, secret: str) -> str:
        return self._signer.sign(secret).decode()

    def unsign(self, token: str) -> str | None:
        try:
            return self._signer.unsign(token).decode()
        except (BadSignature, UnicodeError):
            return None
