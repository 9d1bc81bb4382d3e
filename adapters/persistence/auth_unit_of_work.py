"""The SQL unit of work of the auth store: one session, one transaction, its repositories."""

from __future__ import annotations

from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from adapters.persistence.auth_repositories import SqlSessionRepository, SqlUserRepository


class SqlAuthUnitOfWork:
    """`with uow: ...; uow.commit()`. Leaving the block without committing rolls back."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self.session: Session | None = None

    def __enter__(self) -> Self:
        if self.session is not None:
            raise RuntimeError("this unit of work is already in use; make a new one")
        self.session = self.session_factory()
        self.users = SqlUserRepository(self.session)
        self.sessions = SqlSessionRepository(self.session)
        return self

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
