"""The gevent worker's wait callback for psycopg2 (entrypoints/gunicorn_worker.py): while one
greenlet waits for PostgreSQL, the others run. Without it psycopg2 waits inside its C code and
every greenlet of the worker stops until the query is back."""

from __future__ import annotations

import gevent
import psycopg2
import pytest
from psycopg2 import extensions

from entrypoints.gunicorn_worker import make_psycopg2_cooperative


@pytest.fixture
def cooperative():
    make_psycopg2_cooperative()
    yield
    extensions.set_wait_callback(None)  # the callback is process-wide: leave none behind


def test_another_greenlet_runs_while_one_waits_for_the_database(postgres_url, cooperative):
    dsn = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    connection = psycopg2.connect(dsn)
    order: list[str] = []

    def slow_query() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.3)")
        order.append("query done")

    def other() -> None:
        order.append("other ran")

    try:
        gevent.joinall([gevent.spawn(slow_query), gevent.spawn(other)], timeout=30)
        assert order == ["other ran", "query done"]
        # errors come back as psycopg2's own, not as a hang
        with pytest.raises(psycopg2.errors.DivisionByZero), connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
    finally:
        connection.close()
