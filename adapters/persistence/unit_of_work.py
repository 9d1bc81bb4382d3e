"""The SQL unit of work: one session, one transaction, the repositories that share it."""

from __future__ import annotations

from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from adapters.persistence.repositories import (
    SqlChangeFeed,
    SqlDeviceRepository,
    SqlEnvironmentRepository,
    SqlOutbox,
    SqlStatistics,
    SqlTestCaseRepository,
    SqlTestRunRepository,
)


class SessionUnitOfWork:
    """One SQLAlchemy session, one transaction: `with uow: ...; uow.commit()`. Leaving the
    block without committing rolls back. Subclasses build their repositories on the session.

    The transaction begins with the first statement (on SQLite that is BEGIN IMMEDIATE, see
    `engine.py`). After `commit()` the unit of work may be used again: the next statement
    opens a new transaction."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self.session: Session | None = None

    def __enter__(self) -> Self:
        if self.session is not None:
            raise RuntimeError("this unit of work is already in use; make a new one")
        self.session = self.session_factory()
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
        self._active().commit()

    def rollback(self) -> None:
        self._active().rollback()

    def _active(self) -> Session:
        if self.session is None:
            raise RuntimeError("the unit of work is not open; use it in a `with` block")
        return self.session


class SqlAlchemyUnitOfWork(SessionUnitOfWork):
    """The devicelab store: devices, test cases, environments, runs, outbox, change log."""

    def _open_repositories(self, session: Session) -> None:
        self.devices = SqlDeviceRepository(session)
        self.test_cases = SqlTestCaseRepository(session)
        self.environments = SqlEnvironmentRepository(session)
        self.test_runs = SqlTestRunRepository(session)
        self.outbox = SqlOutbox(session)
        self.changes = SqlChangeFeed(session)
        self.statistics = SqlStatistics(session)
