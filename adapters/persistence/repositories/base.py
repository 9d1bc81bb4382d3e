"""What every SQL repository shares: the session, statement execution with retries of
transient errors, unique-name handling and keyset-pagination helpers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from application.errors import AlreadyExists, ConcurrentUpdate
from domain.errors import InvalidValue

# PostgreSQL error codes of transient conflicts: the whole transaction may simply be retried.
_RETRYABLE_PGCODES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


class SqlRepository:
    def __init__(self, session: Session | Connection) -> None:
        # a Connection in a read-only unit of work on PostgreSQL (unit_of_work.py)
        self.session = session
        bind = session.get_bind() if isinstance(session, Session) else session
        self.dialect = bind.dialect.name

    def _execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        try:
            return self.session.execute(statement, params)  # type: ignore[return-value]
        except OperationalError as error:
            if is_transient(error):
                raise ConcurrentUpdate(
                    "the database was busy with a conflicting change; retry"
                ) from error
            raise

    @contextmanager
    def _unique_name(self, kind: str, constraint: str, name: str) -> Iterator[None]:
        """Turn a unique-name violation (a race the use case's own check could not see)
        into the same error the use case raises."""
        try:
            yield
        except IntegrityError as error:
            if _violates(error, constraint):
                raise AlreadyExists(kind, "name", name) from error
            raise


def is_transient(error: OperationalError) -> bool:
    code = getattr(error.orig, "pgcode", None)
    if code is not None:
        return code in _RETRYABLE_PGCODES
    return "database is locked" in str(error.orig)


def violates(error: IntegrityError, constraints: tuple[str, ...], sqlite_says: str) -> bool:
    """Whether the driver's error is a violation of one of `constraints`: PostgreSQL names
    the constraint; SQLite names none, its message (`sqlite_says`) names the columns."""
    name = _constraint_name(error)
    return name in constraints if name else sqlite_says in str(error.orig)


def _constraint_name(error: IntegrityError) -> str | None:
    """Read in a frame of its own that is gone before the caller raises on: psycopg2's
    diagnostics object refers to its error and takes no part in the garbage collector, so
    one held in a local of a frame the error passed through made a cycle never freed, and
    every frame of the traceback with its locals stayed in memory for good."""
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", None) if diag is not None else None


def _violates(error: IntegrityError, constraint: str) -> bool:
    # the name or its key; SQLite: "UNIQUE constraint failed: devices.name" (or .name_key)
    table = constraint.removeprefix("uq_").removesuffix("_name")
    return violates(
        error, (constraint, f"{constraint}_key"), f"UNIQUE constraint failed: {table}.name"
    )


def after_by_name(table: sa.Table, after: tuple | None) -> sa.ColumnElement[bool] | None:
    """Keyset condition for lists ordered by (name, id) ascending."""
    if after is None:
        return None
    name, item_id = after
    # the redundant `name >= :name` is what an index on name can start its scan from; the OR
    # alone is only a filter, and a deep page would read every row before the cursor
    return sa.and_(
        table.c.name >= name,
        sa.or_(table.c.name > name, sa.and_(table.c.name == name, table.c.id > item_id)),
    )


def contains_text(column: sa.ColumnElement[str], text: str) -> sa.ColumnElement[bool]:
    return sa.func.lower(column).contains(text.lower(), autoescape=True)


def number_json(value: float | None) -> float | str | None:
    """JSON (and PostgreSQL's jsonb) has no NaN or infinity; a runner may still measure one."""
    if value is None or math.isfinite(value):
        return value
    return repr(float(value))  # "nan", "inf", "-inf"


def number_from(value: float | str | None) -> float | None:
    return None if value is None else float(value)


def cursor_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
        # in UTC, as stored; a made-up offset can push it past year 9999 (OverflowError)
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidValue("cursor", "is not a cursor this API issued for this list") from None
