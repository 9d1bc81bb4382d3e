"""The SQL trend query (adapters/persistence/repositories/trends.py) against the in-memory
twin: the same history on both, the same trends, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from adapters.persistence.repositories.trends import trend_query
from application.ports import TrendScope
from application.use_cases.trends import ShowTrend, TrendRequest
from tests.integration.conftest import T0
from tests.integration.test_sql_comparison import build, twins  # noqa: F401  (a fixture)


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_and_memory_trend_alike(twins, seed):  # noqa: F811
    sql, memory = twins
    history = build(sql, seed)
    build(memory, seed)
    voltage, current = history.voltage.id, history.current.id
    requests = [
        TrendRequest(voltage),
        TrendRequest(voltage, limit=7),
        TrendRequest(current, metric="current"),
        TrendRequest(voltage, model="EM-340"),
        TrendRequest(voltage, device_id=history.other.id),
        TrendRequest(
            voltage,
            finished_from=T0 + timedelta(minutes=30),
            finished_to=T0 + timedelta(hours=2),
        ),
    ]
    for request in requests:
        on_sql = ShowTrend(sql.new_uow)(request)
        in_memory = ShowTrend(memory.new_uow)(request)
        assert on_sql.points, request
        assert on_sql == in_memory, request
    cut = ShowTrend(sql.new_uow)(TrendRequest(voltage, limit=7))
    assert cut.truncated and cut.results == 7
    assert all(p.result.finished_at.tzinfo is not None for p in cut.points)


def test_the_newest_results_are_read_from_the_finish_time_index(lab, engine):
    """The plan walks the completed runs by finish time (SQLite answers for the plan shape;
    PostgreSQL picks by table size, so tiny test tables prove nothing there)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the plan is checked on SQLite")
    statement = trend_query(TrendScope("case", 500))
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        plan = " ".join(
            str(row[-1]) for row in connection.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
    assert "ix_test_runs_status_finished_at" in plan, plan
    # ties in finish time are ordered as they come (RIGHT PART), never the whole window
    assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
