"""What wakes a process's reader of the change log (`live_updates.ChangeFanout`).

On PostgreSQL the transaction that writes the change log also sends a NOTIFY
(`repositories.change_feed`), which PostgreSQL delivers when it commits: the reader LISTENs on
a connection of its own and reads the feed as soon as a change is visible, not up to a poll
interval later. The wait is bounded all the same (a safety poll), and while the listening
connection is lost it is a plain poll until it is back. SQLite has no notifications: the
reader polls, one short query per interval and process however many streams are open.

Under gunicorn's gevent worker the `select` below is gevent's (monkey-patched), so a waiting
reader costs no OS thread."""

from __future__ import annotations

import logging
import select
import time
from typing import Any

from sqlalchemy.engine import make_url

from adapters.persistence.engine import postgres_connect_defaults
from adapters.persistence.repositories.change_feed import CHANGES_CHANNEL

log = logging.getLogger(__name__)

SQLITE_POLL_S = 0.25  # one query per process four times a second: well within 1 s latency


class PollingChangeSignal:
    """A change may have happened every `interval_s`: the poll of a database without
    notifications."""

    def __init__(self, interval_s: float = SQLITE_POLL_S) -> None:
        self.interval_s = interval_s

    def wait(self, timeout_s: float) -> None:
        time.sleep(max(0.0, min(self.interval_s, timeout_s)))

    def close(self) -> None:
        pass


class PostgresChangeSignal:
    """LISTEN on the change log's channel, on a connection of its own (psycopg2, autocommit;
    not one of the pool's: it is held for as long as the process reads the feed)."""

    RECONNECT_S = 1.0

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self._connect_args: dict[str, Any] = {
            key: value
            for key, value in {
                "host": url.host,
                "port": url.port,
                "user": url.username,
                "password": url.password,
                "dbname": url.database,
                **postgres_connect_defaults(url),
                **url.query,
            }.items()
            if value is not None
        }
        self._connection: Any = None
        self._failed_at = 0.0

    def _listening(self) -> Any:
        if self._connection is None and time.monotonic() - self._failed_at >= self.RECONNECT_S:
            import psycopg2
            import psycopg2.extensions

            try:
                connection = psycopg2.connect(**self._connect_args)
                connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
                with connection.cursor() as cursor:
                    cursor.execute(f"LISTEN {CHANGES_CHANNEL}")
                self._connection = connection
            except psycopg2.Error:
                self._failed_at = time.monotonic()
                log.warning("cannot LISTEN for changes; polling until it can", exc_info=True)
        return self._connection

    def wait(self, timeout_s: float) -> None:
        connection = self._listening()
        if connection is None:
            time.sleep(max(0.0, min(self.RECONNECT_S, timeout_s)))
            return
        try:
            if not connection.notifies:
                select.select([connection], [], [], max(0.0, timeout_s))
            connection.poll()
            connection.notifies.clear()
        except Exception:  # the server went away: poll until it is back
            log.warning("the LISTEN connection was lost", exc_info=True)
            self.close()
            self._failed_at = time.monotonic()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                log.debug("closing the LISTEN connection failed", exc_info=True)


def change_signal_for(database_url: str) -> PollingChangeSignal | PostgresChangeSignal:
    """The signal for the lab database at `database_url`: LISTEN/NOTIFY on PostgreSQL, a
    poll elsewhere."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresChangeSignal(database_url)
    return PollingChangeSignal()
