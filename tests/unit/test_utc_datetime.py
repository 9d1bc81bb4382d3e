"""UtcDateTime hands back every stored timestamp as an aware datetime in UTC, whatever the
driver gave: its own result processor (adapters/persistence/tables.py) must convert as
`process_result_value` does, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from adapters.persistence.tables import UtcDateTime

MOMENT = datetime(2026, 12, 1, 19, 30, 5, 123456, tzinfo=UTC)


def _processor(dialect):
    column_type = UtcDateTime()
    processor = column_type.dialect_impl(dialect).result_processor(dialect, None)
    assert processor is not None
    return processor


@pytest.mark.parametrize(
    "stored",
    [
        MOMENT,
        MOMENT.astimezone(timezone(timedelta(hours=2))),
        MOMENT.astimezone(timezone(timedelta(hours=-5, minutes=-30))),
        MOMENT.replace(tzinfo=None),  # naive: UTC
    ],
)
def test_a_postgresql_timestamp_comes_back_in_utc(stored: datetime) -> None:
    dialect = postgresql.psycopg2.dialect()
    value = _processor(dialect)(stored)
    assert value == MOMENT
    assert value.tzinfo is UTC
    assert value == UtcDateTime().process_result_value(stored, dialect)


def test_an_sqlite_timestamp_comes_back_in_utc() -> None:
    dialect = sqlite.pysqlite.dialect()
    value = _processor(dialect)("2026-12-01 19:30:05.123456")
    assert value == MOMENT
    assert value.tzinfo is UTC


def test_no_timestamp_stays_none() -> None:
    assert _processor(postgresql.psycopg2.dialect())(None) is None
    assert _processor(sqlite.pysqlite.dialect())(None) is None
