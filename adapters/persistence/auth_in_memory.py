"""The in-memory twin of the auth store: users, sessions and API tokens in dicts, real enough to run the
auth service on.

A unit of work holds the store's lock for its whole life and works on copies: commit puts the
copies back, leaving without commit drops them, as a database transaction would."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Self

from domain.api_tokens import ApiToken
from domain.users import Session, User


@dataclass
class InMemoryAuthStore:
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    api_tokens: dict[str, ApiToken] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


class InMemoryUserRepository:
    def __init__(self, users: dict[str, User]) -> None:
        self._users = users

    def add(self, user: User) -> None:
        if user.id in self._users:
            raise KeyError(f"user {user.id} exists already")
        self._users[user.id] = copy.deepcopy(user)

    def update(self, user: User) -> None:
        self._users[user.id] = copy.deepcopy(user)

    def get(self, user_id: str) -> User | None:
        return copy.deepcopy(self._users.get(user_id))

    def get_by_email(self, email: str) -> User | None:
        found = next((u for u in self._users.values() if u.email == email), None)
        return copy.deepcopy(found)

    def list(self, limit: int, after: tuple | None) -> list[User]:
        ordered = sorted(self._users.values(), key=lambda u: (u.email, u.id))
        if after is not None:
            ordered = [u for u in ordered if (u.email, u.id) > tuple(after)]
        return copy.deepcopy(ordered[:limit])

    def active_admin_ids(self, for_update: bool = False) -> set[str]:
        return {u.id for u in self._users.values() if u.is_active_admin}


class InMemorySessionRepository:
    def __init__(self, sessions: dict[str, Session], users: dict[str, User]) -> None:
        self._sessions, self._users = sessions, users

    def add(self, session: Session) -> None:
        if session.id in self._sessions:
            raise KeyError(f"session {session.id} exists already")
        self._sessions[session.id] = copy.deepcopy(session)

    def update(self, session: Session) -> None:
        if session.id in self._sessions:
            self._sessions[session.id] = copy.deepcopy(session)

    def get(self, session_id: str) -> Session | None:
        return copy.deepcopy(self._sessions.get(session_id))

    def get_with_user(self, token_hash: str) -> tuple[Session, User] | None:
        session = next((s for s in self._sessions.values() if s.token_hash == token_hash), None)
        user = self._users.get(session.user_id) if session else None
        return (copy.deepcopy(session), copy.deepcopy(user)) if session and user else None

    def list_active(
        self, user_id: str, now: datetime, limit: int, after: tuple | None
    ) -> list[Session]:
        mine = [s for s in self._sessions.values() if s.user_id == user_id and s.is_active(now)]
        ordered = sorted(mine, key=lambda s: (s.created_at.isoformat(), s.id), reverse=True)
        if after is not None:
            ordered = [s for s in ordered if (s.created_at.isoformat(), s.id) < tuple(after)]
        return copy.deepcopy(ordered[:limit])

    def remove(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def remove_all_of(self, user_id: str, keep: str | None = None) -> int:
        doomed = [s.id for s in self._sessions.values() if s.user_id == user_id and s.id != keep]
        for session_id in doomed:
            del self._sessions[session_id]
        return len(doomed)

    def remove_expired(self, now: datetime) -> int:
        doomed = [s.id for s in self._sessions.values() if not s.is_active(now)]
        for session_id in doomed:
            del self._sessions[session_id]
        return len(doomed)


class InMemoryApiTokenRepository:
    def __init__(self, tokens: dict[str, ApiToken], users: dict[str, User]) -> None:
        self._tokens, self._users = tokens, users

    def add(self, token: ApiToken) -> None:
        if token.id in self._tokens or any(
            t.token_hash == token.token_hash for t in self._tokens.values()
        ):
            raise KeyError(f"API token {token.id} exists already")
        self._tokens[token.id] = copy.deepcopy(token)

    def update(self, token: ApiToken) -> None:
        if token.id in self._tokens:
            self._tokens[token.id].revoked_at = token.revoked_at

    def record_use(self, token_id: str, at: datetime) -> None:
        if token_id in self._tokens:
            self._tokens[token_id].last_used_at = at

    def get(self, token_id: str) -> ApiToken | None:
        return copy.deepcopy(self._tokens.get(token_id))

    def get_with_user(self, token_hash: str) -> tuple[ApiToken, User] | None:
        token = next((t for t in self._tokens.values() if t.token_hash == token_hash), None)
        user = self._users.get(token.user_id) if token else None
        return (copy.deepcopy(token), copy.deepcopy(user)) if token and user else None

    def list_of(self, user_id: str, limit: int, after: tuple | None) -> list[ApiToken]:
        mine = [t for t in self._tokens.values() if t.user_id == user_id and t.revoked_at is None]
        ordered = sorted(mine, key=lambda t: (t.created_at.isoformat(), t.id), reverse=True)
        if after is not None:
            ordered = [t for t in ordered if (t.created_at.isoformat(), t.id) < tuple(after)]
        return copy.deepcopy(ordered[:limit])


class InMemoryAuthUnitOfWork:
    def __init__(self, store: InMemoryAuthStore, read_only: bool = False) -> None:
        self.store, self.read_only = store, read_only
        self._open = False

    def __enter__(self) -> Self:
        if self._open:
            raise RuntimeError("this unit of work is already in use; make a new one")
        self.store.lock.acquire()
        self._open = True
        self._begin()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._open:
            self._open = False
            self.store.lock.release()

    def _begin(self) -> None:
        self._users = copy.deepcopy(self.store.users)
        self._sessions = copy.deepcopy(self.store.sessions)
        self._api_tokens = copy.deepcopy(self.store.api_tokens)
        self.users = InMemoryUserRepository(self._users)
        self.sessions = InMemorySessionRepository(self._sessions, self._users)
        self.api_tokens = InMemoryApiTokenRepository(self._api_tokens, self._users)

    def commit(self) -> None:
        self._active()
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self.store.users = self._users
        self.store.sessions = self._sessions
        self.store.api_tokens = self._api_tokens
        self._begin()

    def rollback(self) -> None:
        self._active()
        self._begin()

    def _active(self) -> None:
        if not self._open:
            raise RuntimeError("the unit of work is not open; use it in a `with` block")
