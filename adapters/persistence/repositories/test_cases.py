"""The test case aggregate in SQL: test cases with their criteria and execution."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository, after_by_name, contains_text
from adapters.persistence.repositories.change_feed import log_change
from application.errors import ConcurrentUpdate
from application.ports import NameFilter
from domain.execution import Execution
from domain.names import name_key
from domain.test_cases import Criterion, TestCase


def criterion_json(criterion: Criterion) -> dict[str, Any]:
    return criterion.as_json()


def criterion_from(data: dict[str, Any]) -> Criterion:
    """Criteria stored before the range kinds (metric, condition, threshold, unit) load as
    they were: every newer key has its default."""
    return Criterion.from_json(data)


def _test_case_values(case: TestCase) -> dict[str, Any]:
    return {
        "name": case.name,
        "name_key": case.name_key,
        "description": case.description,
        "criteria": [criterion_json(c) for c in case.criteria],
        "duration_s": case.duration_s,
        "timeout_s": case.timeout_s,
        "default_parameters": dict(case.default_parameters),
        "tags": list(case.tags),
        "execution": case.execution.as_json(),
        "version": case.version,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
    }


class SqlTestCaseRepository(SqlRepository):
    __test__ = False

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        # TestCase.version is the content version, bumped by real edits only; an update
        # checks the stored one is still the one read, so two concurrent edits cannot both
        # become "version n+1" with different contents.
        self._read_versions: dict[str, int] = {}

    def add(self, test_case: TestCase) -> None:
        with self._unique_name("test case", "uq_test_cases_name", test_case.name):
            self._execute(
                sa.insert(t.test_cases).values(id=test_case.id, **_test_case_values(test_case))
            )
        self._read_versions[test_case.id] = test_case.version
        log_change(self, "test_case", test_case.id)

    def update(self, test_case: TestCase) -> None:
        statement = (
            sa.update(t.test_cases)
            .where(t.test_cases.c.id == test_case.id)
            .values(**_test_case_values(test_case))
        )
        read_version = self._read_versions.get(test_case.id)
        if read_version is not None:
            statement = statement.where(t.test_cases.c.version == read_version)
        with self._unique_name("test case", "uq_test_cases_name", test_case.name):
            result = self._execute(statement)
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"test case {test_case.name} was changed meanwhile; retry")
        self._read_versions[test_case.id] = test_case.version
        log_change(self, "test_case", test_case.id)

    def remove(self, test_case: TestCase) -> None:
        self._execute(sa.delete(t.test_cases).where(t.test_cases.c.id == test_case.id))
        self._read_versions.pop(test_case.id, None)
        log_change(self, "test_case", test_case.id, deleted=True)

    def get(self, test_case_id: str) -> TestCase | None:
        found = self._select(sa.select(t.test_cases).where(t.test_cases.c.id == test_case_id))
        return found[0] if found else None

    def get_by_name(self, name: str) -> TestCase | None:
        found = self._select(
            sa.select(t.test_cases).where(t.test_cases.c.name_key == name_key(name))
        )
        return found[0] if found else None

    def list(self, where: NameFilter, limit: int, after: tuple | None) -> list[TestCase]:
        statement = sa.select(t.test_cases)
        if where.text:
            statement = statement.where(contains_text(t.test_cases.c.name, where.text))
        if where.tag:
            statement = statement.where(self._has_tag(where.tag))
        keyset = after_by_name(t.test_cases, after)
        if keyset is not None:
            statement = statement.where(keyset)
        statement = statement.order_by(t.test_cases.c.name, t.test_cases.c.id).limit(limit)
        return self._select(statement)

    def _has_tag(self, tag: str) -> sa.ColumnElement[bool]:
        if self.dialect == "postgresql":
            # jsonb containment: tags @> '["tag"]'
            return sa.type_coerce(t.test_cases.c.tags, postgresql.JSONB).contains([tag])
        each = sa.func.json_each(t.test_cases.c.tags).table_valued("value").alias("tag")
        return sa.select(each.c.value).where(each.c.value == tag).exists()

    def _select(self, statement: sa.Select[Any]) -> list[TestCase]:
        cases = []
        for row in self._execute(statement):
            cases.append(
                TestCase(
                    id=row.id,
                    name=row.name,
                    criteria=[criterion_from(c) for c in row.criteria],
                    description=row.description,
                    duration_s=row.duration_s,
                    timeout_s=row.timeout_s,
                    default_parameters=dict(row.default_parameters),
                    tags=list(row.tags),
                    execution=Execution.from_json(row.execution),
                    version=row.version,
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                )
            )
            self._read_versions[row.id] = row.version
        return cases
