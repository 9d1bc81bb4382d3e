"""The environment aggregate in SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository, after_by_name, contains_text
from adapters.persistence.repositories.change_feed import log_change
from application.errors import ConcurrentUpdate
from application.ports import NameFilter
from domain.environments import Environment
from domain.names import name_key


def _environment_values(environment: Environment) -> dict[str, Any]:
    return {
        "name": environment.name,
        "name_key": environment.name_key,
        "description": environment.description,
        "variables": dict(environment.variables),
        "created_at": environment.created_at,
        "updated_at": environment.updated_at,
    }


class SqlEnvironmentRepository(SqlRepository):
    def add(self, environment: Environment) -> None:
        with self._unique_name("environment", "uq_environments_name", environment.name):
            self._execute(
                sa.insert(t.environments).values(
                    id=environment.id, **_environment_values(environment)
                )
            )
        log_change(self, "environment", environment.id)

    def update(self, environment: Environment) -> None:
        statement = (
            sa.update(t.environments)
            .where(t.environments.c.id == environment.id)
            .values(**_environment_values(environment))
        )
        with self._unique_name("environment", "uq_environments_name", environment.name):
            result = self._execute(statement)
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"environment {environment.name} was deleted meanwhile")
        log_change(self, "environment", environment.id)

    def remove(self, environment: Environment) -> None:
        self._execute(sa.delete(t.environments).where(t.environments.c.id == environment.id))
        log_change(self, "environment", environment.id, deleted=True)

    def get(self, environment_id: str) -> Environment | None:
        found = self._select(sa.select(t.environments).where(t.environments.c.id == environment_id))
        return found[0] if found else None

    def get_by_name(self, name: str) -> Environment | None:
        found = self._select(
            sa.select(t.environments).where(t.environments.c.name_key == name_key(name))
        )
        return found[0] if found else None

    def list(self, where: NameFilter, limit: int, after: tuple | None) -> list[Environment]:
        statement = sa.select(t.environments)
        if where.text:
            statement = statement.where(contains_text(t.environments.c.name, where.text))
        keyset = after_by_name(t.environments, after)
        if keyset is not None:
            statement = statement.where(keyset)
        statement = statement.order_by(t.environments.c.name, t.environments.c.id).limit(limit)
        return self._select(statement)

    def _select(self, statement: sa.Select[Any]) -> list[Environment]:
        return [
            Environment(
                id=row.id,
                name=row.name,
                description=row.description,
                variables=dict(row.variables),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in self._execute(statement)
        ]
