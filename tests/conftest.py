"""Fixtures shared by every test directory: a real PostgreSQL server and databases on it.

PostgreSQL comes from DEVICELAB_TEST_POSTGRES_URL (default: the local server, user postgres).
Each test session creates its own uniquely named databases there and drops them at the end.
When the server does not answer, PostgreSQL tests are skipped, except in CI (CI=true), where
they fail: a CI run must not pass by silently testing less."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from adapters.persistence import auth_tables, tables
from adapters.persistence.engine import make_engine
from adapters.persistence.schema import upgrade_schema

POSTGRES_URL_VARIABLE = "DEVICELAB_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"

# -- PostgreSQL server and databases -----------------------------------------------------


class PostgresServer:
    """An AUTOCOMMIT connection to the server's maintenance database, to create and drop the
    test databases."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = sa.create_engine(
            self.url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 3},
        )
        self.created: list[str] = []

    def check(self) -> None:
        with self.admin.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def create_database(self, purpose: str) -> str:
        name = f"devicelab_test_{purpose}_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        with self.admin.connect() as connection:
            for name in self.created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    url = os.environ.get(POSTGRES_URL_VARIABLE) or DEFAULT_POSTGRES_URL
    server = PostgresServer(url)
    try:
        server.check()
    except sa.exc.DBAPIError as error:
        server.admin.dispose()
        reason = (
            f"PostgreSQL at {server.url.render_as_string(hide_password=True)} does not answer "
            f"({type(error.orig).__name__}: {str(error.orig).strip()[:200]}); "
            f"set {POSTGRES_URL_VARIABLE} to a server where this user may create databases"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database for this test session (dropped at the end)."""
    return postgres_server.create_database("session")


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test, for tests that migrate up and down."""
    url = postgres_server.create_database("fresh")
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    upgrade_schema(postgres_url)
    return postgres_url


def _empty_all_tables(url: str) -> None:
    """Empty the lab's tables, and the auth store's where a test put it in the same database
    (a deployment without DEVICELAB_AUTH_DATABASE_URL does): its users would meet the next
    test's `devicelab users create` as taken."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        present = set(sa.inspect(engine).get_table_names())
        names = [table.name for table in tables.metadata.sorted_tables]
        names += [t.name for t in auth_tables.auth_metadata.sorted_tables if t.name in present]
        _delete_rows(engine, names)
    finally:
        engine.dispose()


def _delete_rows(engine: sa.Engine, names: list[str]) -> None:
    """Every row of the tables `names` (parents before children) deleted, children first, and
    the sequences set back: a test's few rows go in a few milliseconds, where TRUNCATE of every
    table takes ~150 ms (new files for each), and 600 tests start on an emptied database."""
    with engine.begin() as connection:
        connection.exec_driver_sql("; ".join(f"DELETE FROM {name}" for name in reversed(names)))
        connection.exec_driver_sql(
            "SELECT setval(format('%%I.%%I', schemaname, sequencename)::regclass, 1, false)"
            " FROM pg_sequences WHERE schemaname = current_schema()"
        )


@pytest.fixture
def empty_postgres_url(migrated_postgres_url: str) -> str:
    """The session's migrated PostgreSQL database, emptied for this test."""
    _empty_all_tables(migrated_postgres_url)
    return migrated_postgres_url


# -- the auth store (users, sessions) on PostgreSQL ------------------------------------------
# A database of its own, as with DEVICELAB_AUTH_DATABASE_URL: the core schema tests compare the
# session's core database with the core metadata and must not find the auth tables there.


@pytest.fixture(scope="session")
def auth_postgres_url(postgres_server: PostgresServer) -> str:
    from adapters.persistence.schema import upgrade_auth_schema

    url = postgres_server.create_database("auth")
    upgrade_auth_schema(url)
    return url


@pytest.fixture
def empty_auth_postgres_url(auth_postgres_url: str) -> str:
    """The session's PostgreSQL auth database, emptied for this test."""
    engine = make_engine(auth_postgres_url, poolclass=NullPool)
    try:
        _delete_rows(engine, [t.name for t in auth_tables.auth_metadata.sorted_tables])
    finally:
        engine.dispose()
    return auth_postgres_url


# -- SQLite files with the schema at head --------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """migrated_sqlite(url, auth=False) -> url: the SQLite file of `url` made a copy of one the
    migrations took to head in this session (with the auth store's tables too when `auth`).
    Each test still gets a fresh file of its own; the ~0.3 s of running every migration again
    is spent once (the migrations themselves are tested in tests/integration)."""
    from adapters.persistence.schema import upgrade_auth_schema, upgrade_schema

    templates: dict[bool, Path] = {}

    def copy(url: str, auth: bool = False) -> str:
        if auth not in templates:
            template = tmp_path_factory.mktemp("sqlite-template") / "head.db"
            upgrade_schema(f"sqlite:///{template}")
            if auth:
                upgrade_auth_schema(f"sqlite:///{template}")
            templates[auth] = template
        target = Path(make_url(url).database)
        target.parent.mkdir(parents=True, exist_ok=True)
        # the backup API, not a file copy: it takes what a write-ahead log holds too
        source, copied = sqlite3.connect(templates[auth]), sqlite3.connect(target)
        try:
            source.backup(copied)
        finally:
            source.close()
            copied.close()
        return url

    return copy


# -- RabbitMQ ------------------------------------------------------------------------------

RABBITMQ_URL_VARIABLE = "DEVICELAB_TEST_RABBITMQ_URL"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The RabbitMQ of DEVICELAB_TEST_RABBITMQ_URL; tests use their own exchange and queue
    names on it (see `broker_names`). Skipped when it does not answer, failing in CI."""
    from kombu import Connection

    url = os.environ.get(RABBITMQ_URL_VARIABLE) or DEFAULT_RABBITMQ_URL
    connection = Connection(url, connect_timeout=3)
    try:
        connection.ensure_connection(max_retries=1, timeout=3)
    except Exception as error:
        reason = (
            f"RabbitMQ at {url.split('@')[-1]} does not answer ({error}); "
            f"set {RABBITMQ_URL_VARIABLE} to a broker where guest may declare queues"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    finally:
        connection.release()
    return url


@pytest.fixture
def broker_names(rabbitmq_url: str) -> Iterator[Any]:
    """A Topology with names of this test's own, deleted from the broker afterwards."""
    from kombu import Connection

    from adapters.messaging.topology import Topology

    suffix = uuid.uuid4().hex[:8]
    names = Topology(
        exchange=f"test.{suffix}",
        job_queue=f"test.{suffix}.jobs",
        dead_letter_queue=f"test.{suffix}.dead",
        control_exchange=f"test.{suffix}.control",
    )
    yield names
    with Connection(rabbitmq_url) as connection:
        channel = connection.channel()
        for queue in (names.job_queue, names.dead_letter_queue):
            channel.queue_delete(queue)
        for exchange in (names.exchange, names.control_exchange):
            channel.exchange_delete(exchange)


# -- which tests run alone ---------------------------------------------------------------

# Tests that start servers and wait on them against deadlines, drive load, or break processes
# on purpose: `make test` runs them after the rest, on their own (`-m serial`), so that a
# neighbour on the other core cannot stretch their timing. Everything else runs two at once.
SERIAL_DIRECTORIES = ("load", "fault", "container")
SERIAL_FILES = ("test_gunicorn_refusals.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_root = Path(__file__).parent
    for item in items:
        relative = item.path.relative_to(tests_root)
        if (
            relative.parts[0] in SERIAL_DIRECTORIES
            or relative.name in SERIAL_FILES
            or relative.name.endswith("_processes.py")
        ):
            item.add_marker(pytest.mark.serial)
