"""Password hashing with Argon2id (argon2-cffi).

The default parameters are OWASP's first recommendation for Argon2id (Password Storage Cheat
Sheet): 19 MiB of memory, 2 iterations, 1 lane. argon2 hashes the whole password, however
long: nothing is truncated (unlike bcrypt's 72 bytes)."""

from __future__ import annotations

import secrets
from functools import cached_property

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


class Argon2PasswordHasher:
    def __init__(
        self,
        memory_cost_kib: int = OWASP_MEMORY_KIB,
        time_cost: int = OWASP_TIME_COST,
        parallelism: int = OWASP_PARALLELISM,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    @cached_property
    def dummy_hash(self) -> str:
        return self._hasher.hash(secrets.token_urlsafe(24))


def cheap_password_hasher() -> Argon2PasswordHasher:
    """Argon2id with the smallest parameters it accepts: for tests only, where thousands of
    hashes must take milliseconds, never for real passwords."""
    return Argon2PasswordHasher(memory_cost_kib=8, time_cost=1, parallelism=1)
