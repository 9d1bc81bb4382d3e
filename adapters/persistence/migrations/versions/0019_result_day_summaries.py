"""Result summaries per day, so that a comparison in a date window reads sums, not results.

- result_day_summaries: what result_summaries (0013) holds, per test case x model x
  environment x firmware version and UTC day of the run's creation (a comparison's `from` /
  `to` are creation times). Its `recent` keeps the day's newest 10 results themselves, newest
  first, each as its finish time, run id, device id (padded to a fixed width, so SQL can cut
  the text after 10) and verdict letter: a window's newest results are among its days' newest.
- result_day_metric_summaries: what result_metric_summaries holds, per the same day, with the
  result its criterion came from (`criterion_from`, the same order text).

Primary keys start with firmware_version and day: a window of one version is a range of them.
Both tables are filled here from the completed normal runs' results (oldest first, as the code
adds them run by run); health-check runs stay out, as in the comparison since 0018.

On PostgreSQL test_runs is analysed: 0018 added `purpose` without rewriting a row, so nothing
made autovacuum gather its statistics, and without them the planner took `purpose = 'normal'
AND status = 'completed'` for 0.5 % of the runs (it is nearly all) and read a window's results
by hashing every completed run (1 s at 1M runs; bench/results/*-compare-1m-before-day-sums.md).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

RECENT = 10
ID_LENGTH = 64
ORDER_WIDTH = 26 + 2 * ID_LENGTH
CHUNK = 1000
_LETTER = {"pass": "p", "fail": "f", "marginal": "m"}
_REFS = ("oldest", "newest", "newest_pass", "oldest_pass", "oldest_fail")


def _key() -> list[sa.Column]:
    return [
        sa.Column("firmware_version", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("test_case_id", sa.String(ID_LENGTH), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("environment_id", sa.String(ID_LENGTH), nullable=False),
    ]


_KEY_NAMES = ("firmware_version", "day", "test_case_id", "model", "environment_id")


def upgrade() -> None:
    refs = [
        column
        for ref in _REFS
        for column in (
            sa.Column(f"{ref}_run_id", sa.String(ID_LENGTH), nullable=True),
            sa.Column(f"{ref}_at", sa.DateTime(timezone=True), nullable=True),
        )
    ]
    summaries = op.create_table(
        "result_day_summaries",
        *_key(),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("inconclusive", sa.Integer(), nullable=False),
        sa.Column("recent", sa.Text(), nullable=False),
        *refs,
        sa.PrimaryKeyConstraint(*_KEY_NAMES, name="pk_result_day_summaries"),
    )
    metrics = op.create_table(
        "result_day_metric_summaries",
        *_key(),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("condition", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("total_squares", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("criterion_from", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            *_KEY_NAMES, "metric", "condition", name="pk_result_day_metric_summaries"
        ),
    )
    _fill(summaries, metrics)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE test_runs")


def _utc(value: Any) -> datetime:
    """A timestamp as read with a text query: aware on PostgreSQL, naive UTC on SQLite."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _order(at: datetime, run_id: str, device_id: str) -> str:
    return (
        at.strftime("%Y-%m-%dT%H:%M:%S.%f") + run_id.ljust(ID_LENGTH) + device_id.ljust(ID_LENGTH)
    )


def _fill(summaries: sa.Table, metrics: sa.Table) -> None:
    """Sum up the results stored so far, oldest first (as the code does run by run)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT r.test_case_id, d.snapshot AS device, t.environment_id, d.firmware_version, "
            "d.run_created_at, r.device_id, r.verdict, r.run_id, t.finished_at, r.measurements "
            "FROM test_run_results r "
            "JOIN test_run_devices d ON d.run_id = r.run_id AND d.device_id = r.device_id "
            "JOIN test_runs t ON t.id = r.run_id "
            "WHERE t.status = 'completed' AND t.purpose = 'normal' "
            "AND t.finished_at IS NOT NULL "
            "ORDER BY t.finished_at, r.run_id, r.device_id"
        ),
        execution_options={"stream_results": True},
    )
    found: dict[tuple, dict[str, Any]] = {}
    measured: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = (
            row.firmware_version,
            _utc(row.run_created_at).date(),
            row.test_case_id,
            _document(row.device).get("model") or "",
            row.environment_id,
        )
        at = _utc(row.finished_at)
        ref = (row.run_id, at)
        order = _order(at, row.run_id, row.device_id)
        summary = found.setdefault(
            key, {"passed": 0, "failed": 0, "inconclusive": 0, "recent": "", "oldest": ref}
        )
        letter = _LETTER.get(row.verdict, "i")
        summary[{"p": "passed", "m": "passed", "f": "failed", "i": "inconclusive"}[letter]] += 1
        summary["recent"] = (order + letter + summary["recent"])[: RECENT * (ORDER_WIDTH + 1)]
        summary["newest"] = ref
        if letter in "pm":
            summary["newest_pass"] = ref
            summary.setdefault("oldest_pass", ref)
        elif letter == "f":
            summary.setdefault("oldest_fail", ref)
        for measurement in _document(row.measurements):
            label = (*key, measurement["metric"], measurement["condition"])
            sums = measured.setdefault(label, {"count": 0, "total": 0.0, "total_squares": 0.0})
            value = measurement.get("value")
            if isinstance(value, int | float) and not isinstance(value, bool):
                sums["count"] += 1
                sums["total"] += value
                sums["total_squares"] += value * value
            threshold = measurement.get("threshold")
            sums["threshold"] = threshold if isinstance(threshold, int | float) else None
            sums["unit"] = measurement.get("unit") or ""
            sums["criterion_from"] = order
    summary_rows = []
    for key, summary in found.items():
        row = dict(zip(_KEY_NAMES, key, strict=True))
        row.update({k: summary[k] for k in ("passed", "failed", "inconclusive", "recent")})
        for ref in _REFS:
            row[f"{ref}_run_id"], row[f"{ref}_at"] = summary.get(ref, (None, None))
        summary_rows.append(row)
    metric_rows = [
        {**dict(zip((*_KEY_NAMES, "metric", "condition"), label, strict=True)), **sums}
        for label, sums in measured.items()
    ]
    for table, chunk_rows in ((summaries, summary_rows), (metrics, metric_rows)):
        for start in range(0, len(chunk_rows), CHUNK):
            bind.execute(table.insert(), chunk_rows[start : start + CHUNK])


def _document(value: Any) -> Any:
    """A JSON column as read with a text query: decoded on PostgreSQL, text on SQLite."""
    return json.loads(value) if isinstance(value, str) else (value or {})


def downgrade() -> None:
    op.drop_table("result_day_metric_summaries")
    op.drop_table("result_day_summaries")
