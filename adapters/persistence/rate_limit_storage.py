"""The login rate limit's counters in the auth store's database (table `rate_limit_hits`).

flask-limiter counts in a `limits` storage; its in-memory one is per process, so N gunicorn
workers let N times the configured attempts through. This storage keeps one row per counted
attempt, with the moment it stops counting, in the database every process of an instance
already shares (also between the API and a separate auth service). Registered for the URI scheme `devicelab+sql://`; the engine comes as the
storage option `engine`.

A hit is counted under a per-key lock (PostgreSQL: a transaction-scoped advisory lock;
SQLite: the engine's BEGIN IMMEDIATE), so two processes cannot both take the last free
place. Rows past their time are deleted as new hits come in."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import sqlalchemy as sa
from limits.storage import MovingWindowSupport, Storage
from sqlalchemy import Connection, Engine

from adapters.persistence.auth_tables import RATE_LIMIT_KEY_LENGTH, rate_limit_hits

SCHEME = "devicelab+sql"
URI = f"{SCHEME}://"
PURGE_BATCH = 500  # expired rows deleted per counted hit, at most


def _stored_key(key: str) -> str:
    if len(key) <= RATE_LIMIT_KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode(errors="replace")).hexdigest()


class SqlRateLimitStorage(Storage, MovingWindowSupport):
    """A `limits` storage (fixed and moving windows) on a SQLAlchemy engine."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        *,
        engine: Engine,
        clock: Callable[[], float] = time.time,
        **options,
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.engine = engine
        self.clock = clock

    @property
    def base_exceptions(self) -> type[Exception]:
        return sa.exc.SQLAlchemyError

    # -- moving window (what the login limit uses) ---------------------------------------

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        key = _stored_key(key)
        with self.engine.begin() as connection:
            now = self._locked(connection, key)
            if self._live_count(connection, key, now) + amount > limit:
                return False
            self._insert(connection, key, now, now + expiry, amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        key = _stored_key(key)
        now = self.clock()
        with self.engine.connect() as connection:
            oldest, count = connection.execute(
                sa.select(sa.func.min(rate_limit_hits.c.hit_at), sa.func.count()).where(
                    rate_limit_hits.c.key == key, rate_limit_hits.c.expires_at > now
                )
            ).one()
        return (oldest, count) if count else (now, 0)

    # -- fixed window (the other strategy flask-limiter may be configured with) ----------

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        key = _stored_key(key)
        with self.engine.begin() as connection:
            now = self._locked(connection, key)
            window_end = self._window_end(connection, key, now) or now + expiry
            self._insert(connection, key, now, window_end, amount)
            return self._live_count(connection, key, now)

    def get(self, key: str) -> int:
        with self.engine.connect() as connection:
            return self._live_count(connection, _stored_key(key), self.clock())

    def get_expiry(self, key: str) -> float:
        now = self.clock()
        with self.engine.connect() as connection:
            return self._window_end(connection, _stored_key(key), now) or now

    # -- housekeeping ----------------------------------------------------------------------

    def check(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.select(sa.func.count()).select_from(rate_limit_hits))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as connection:
            return connection.execute(sa.delete(rate_limit_hits)).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                sa.delete(rate_limit_hits).where(rate_limit_hits.c.key == _stored_key(key))
            )

    # -- helpers ---------------------------------------------------------------------------

    def _locked(self, connection: Connection, key: str) -> float:
        """Serialise hits of `key` until the transaction ends, drop what has run out, and
        return the time the hit counts at (read after the lock: it waited its turn)."""
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
            )
        now = self.clock()
        # rows another transaction is deleting are skipped, not waited for: two clean-ups
        # cannot deadlock (SQLite has a single writer anyway and ignores the clause)
        expired = (
            sa.select(rate_limit_hits.c.id)
            .where(rate_limit_hits.c.expires_at <= now)
            .limit(PURGE_BATCH)
            .with_for_update(skip_locked=True)
        )
        connection.execute(sa.delete(rate_limit_hits).where(rate_limit_hits.c.id.in_(expired)))
        return now

    @staticmethod
    def _live_count(connection: Connection, key: str, now: float) -> int:
        return connection.execute(
            sa.select(sa.func.count()).where(
                rate_limit_hits.c.key == key, rate_limit_hits.c.expires_at > now
            )
        ).scalar_one()

    @staticmethod
    def _window_end(connection: Connection, key: str, now: float) -> float | None:
        return connection.execute(
            sa.select(sa.func.max(rate_limit_hits.c.expires_at)).where(
                rate_limit_hits.c.key == key, rate_limit_hits.c.expires_at > now
            )
        ).scalar_one()

    @staticmethod
    def _insert(connection: Connection, key: str, now: float, until: float, amount: int) -> None:
        connection.execute(
            sa.insert(rate_limit_hits),
            [{"key": key, "hit_at": now, "expires_at": until}] * amount,
        )
