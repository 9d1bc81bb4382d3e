"""The SQL unit of work of the auth store: one session, one transaction, its repositories."""

from __future__ import annotations

from sqlalchemy.orm import Session

from adapters.persistence.auth_repositories import (
    SqlApiTokenRepository,
    SqlSessionRepository,
    SqlUserRepository,
)
from adapters.persistence.unit_of_work import SessionUnitOfWork


class SqlAuthUnitOfWork(SessionUnitOfWork):
    """Users, sessions and API tokens, in the auth database."""

    def _open_repositories(self, session: Session) -> None:
        self.users = SqlUserRepository(session)
        self.sessions = SqlSessionRepository(session)
        self.api_tokens = SqlApiTokenRepository(session)
