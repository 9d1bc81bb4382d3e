"""The SQL unit of work: one session, one transaction, the repositories that share it."""

from __future__ import annotations

from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from adapters.persistence.engine import read_only_options
from adapters.persistence.repositories import (
    SqlChangeFeed,
    SqlDeviceRepository,
    SqlEnvironmentRepository,
    SqlOutbox,
    SqlStatistics,
    SqlStreamLeases,
    SqlTestCaseRepository,
    SqlTestRunRepository,
    forget_logged_changes,
    write_logged_changes,
)


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
        self.session: Session | None = None

    def __enter__(self) -> Self:
        if self.session is not None:
            raise RuntimeError("this unit of work is already in use; make a new one")
        if not self.read_only:
            self.session = self.session_factory()
        elif self.read_session_factory is not None:
            self.session = self.read_session_factory()
        else:
            self.session = self.session_factory()
            backend = self.session.get_bind().dialect.name
            self.session.connection(execution_options=read_only_options(backend))
        self._open_repositories(self.session)
        return self

    def _open_repositories(self, session: Session) -> None:
        raise NotImplementedError

    def __exit__(self, *exc_info: object) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        try:
            session.rollback()
        finally:
            session.close()

    def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self._active().commit()

    def rollback(self) -> None:
        self._active().rollback()

    def _active(self) -> Session:
        if self.session is None:
            raise RuntimeError("the unit of work is not open; use it in a `with` block")
        return self.session


class SqlAlchemyUnitOfWork(SessionUnitOfWork):
    """The devicelab store: devices, test cases, environments, runs, outbox, change log.
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
        self.outbox = SqlOutbox(session)
        self.changes = SqlChangeFeed(session)
        self.statistics = SqlStatistics(session)
        self.stream_leases = SqlStreamLeases(session)
