"""The SQL unit of work: one session, one transaction, the repositories that share it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from sqlalchemy import Connection, exc
from sqlalchemy.orm import Session, sessionmaker

from adapters.persistence.engine import read_only_options
from adapters.persistence.repositories import (
    SqlArtifacts,
    SqlChangeFeed,
    SqlDeviceRepository,
    SqlEnvironmentRepository,
    SqlFirmwareSightings,
    SqlHealthChecks,
    SqlHoldRepository,
    SqlOutbox,
    SqlPlanRepository,
    SqlPlanRunRepository,
    SqlResults,
    SqlRunLogs,
    SqlRunners,
    SqlStatistics,
    SqlStreamLeases,
    SqlTestCaseRepository,
    SqlTestRunRepository,
    SqlTimelines,
    SqlTrends,
    SqlWebhooks,
    forget_logged_changes,
    is_transient,
    write_logged_changes,
)
from application.errors import StoreUnavailable

# SQLSTATE classes of a server that cannot serve: connection exception, insufficient
# resources (53300 too_many_connections), operator intervention (57P01 admin_shutdown,
# 57P02 crash_shutdown, 57P03 cannot_connect_now)
_UNAVAILABLE_PGCODE_PREFIXES = ("08", "53", "57P")
_UNAVAILABLE_SQLITE_MESSAGES = ("unable to open database file", "disk I/O error")


def is_unavailable(error: BaseException) -> bool:
    """Does `error` say the database cannot be used right now (rather than that this
    statement or this data is wrong)?"""
    if isinstance(error, exc.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated or isinstance(error, exc.InterfaceError):
        return True  # a dropped connection; the pool has thrown it (and its peers) away
    if not isinstance(error, exc.OperationalError) or is_transient(error):
        return False
    if hasattr(error.orig, "pgcode"):  # psycopg2; no code: refused before the server spoke
        code = error.orig.pgcode
        return code is None or code.startswith(_UNAVAILABLE_PGCODE_PREFIXES)
    return any(message in str(error.orig) for message in _UNAVAILABLE_SQLITE_MESSAGES)


@contextmanager
def unavailability_as_store_unavailable() -> Iterator[None]:
    """Raise the database's "cannot serve now" errors as the port's StoreUnavailable, so the
    callers (HTTP answers 503 with Retry-After) need not know SQLAlchemy."""
    try:
        yield
    except (exc.DBAPIError, exc.TimeoutError) as error:
        if is_unavailable(error):
            raise StoreUnavailable() from error
        raise


class SessionUnitOfWork:
    """One SQLAlchemy session, one transaction: `with uow: ...; uow.commit()`. Leaving the
    block without committing rolls back. Subclasses build their repositories on the session.

    The transaction begins with the first statement (on SQLite that is BEGIN IMMEDIATE, see
    `engine.py`). After `commit()` the unit of work may be used again: the next statement
    opens a new transaction. A read-only unit of work (`read_only=True`) runs its statements
    without a transaction on PostgreSQL and in a deferred (lock-free) one on SQLite; it
    refuses to commit."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        read_only: bool = False,
        read_session_factory: sessionmaker[Session] | None = None,
    ) -> None:
        self.session_factory, self.read_only = session_factory, read_only
        # sessions on `make_read_engine`'s engine; without one, a read-only unit of work
        # sets the read-only options on its connection itself (a little slower)
        self.read_session_factory = read_session_factory
        # a Connection for a read-only unit of work on PostgreSQL (see __enter__): the
        # repositories only execute statements on it
        self.session: Session | Connection | None = None

    def __enter__(self) -> Self:
        if self.session is not None:
            raise RuntimeError("this unit of work is already in use; make a new one")
        if not self.read_only:
            self.session = self.session_factory()
        elif self.read_session_factory is not None:
            read_engine = self.read_session_factory.kw["bind"]
            if read_engine.dialect.name == "postgresql":
                # in autocommit from the start: a Connection does all a Session would here,
                # without the Session's transaction bookkeeping (an eighth of the CPU time of
                # a device list request, which opens three of these)
                with unavailability_as_store_unavailable():
                    self.session = read_engine.connect()
            else:
                self.session = self.read_session_factory()
        else:
            self.session = self.session_factory()
            backend = self.session.get_bind().dialect.name
            try:
                with unavailability_as_store_unavailable():
                    self.session.connection(execution_options=read_only_options(backend))
            except BaseException:
                self.session, session = None, self.session
                session.close()
                raise
        self._open_repositories(self.session)
        return self

    def _open_repositories(self, session: Session) -> None:
        raise NotImplementedError

    def __exit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        with unavailability_as_store_unavailable():
            try:
                if isinstance(session, Session):
                    session.rollback()
            finally:
                session.close()
        # a statement of the block found the database gone (the repositories run them)
        if error is not None and is_unavailable(error):
            raise StoreUnavailable() from error

    def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        with unavailability_as_store_unavailable():
            self._active().commit()

    def rollback(self) -> None:
        with unavailability_as_store_unavailable():
            self._active().rollback()

    def _active(self) -> Session:
        if self.session is None:
            raise RuntimeError("the unit of work is not open; use it in a `with` block")
        return self.session


class SqlAlchemyUnitOfWork(SessionUnitOfWork):
    """The devicelab store: devices, test cases, environments, runs, holds, outbox, change log.
    The repositories note their changes for the change log; the notes are written in one
    statement right before the commit, and dropped by a rollback."""

    def commit(self) -> None:
        session = self._active()
        if not self.read_only:
            write_logged_changes(session)
        super().commit()

    def rollback(self) -> None:
        forget_logged_changes(self._active())
        super().rollback()

    def _open_repositories(self, session: Session) -> None:
        self.devices = SqlDeviceRepository(session)
        self.test_cases = SqlTestCaseRepository(session)
        self.environments = SqlEnvironmentRepository(session)
        self.test_runs = SqlTestRunRepository(session)
        self.holds = SqlHoldRepository(session)
        self.outbox = SqlOutbox(session)
        self.changes = SqlChangeFeed(session)
        self.statistics = SqlStatistics(session)
        self.results = SqlResults(session)
        self.trends = SqlTrends(session)
        self.utilisation = SqlTimelines(session)
        self.stream_leases = SqlStreamLeases(session)
        self.webhooks = SqlWebhooks(session)
        self.plans = SqlPlanRepository(session)
        self.plan_runs = SqlPlanRunRepository(session)
        self.firmware_sightings = SqlFirmwareSightings(session)
        self.health_checks = SqlHealthChecks(session)
        self.runners = SqlRunners(session)
        self.run_logs = SqlRunLogs(session)
        self.artifacts = SqlArtifacts(session)
