"""Result summaries for firmware comparison and regression tracking.

- result_summaries: per test case x model x environment x firmware version, the results of
  completed runs summed up: verdict counts, the verdicts of the newest 10 (`recent`, newest
  first: p, f, i), the oldest and newest run, the newest and oldest passing run, the oldest
  failing run (ids and finish times).
- result_metric_summaries: per the same key and metric x condition, the count, sum and sum of
  squares of the measured values and the criterion of the newest result with the metric.
- ix_test_run_devices_firmware_version_run_created_at: a comparison in a date window reads
  only that part of a firmware version's runs.

Both tables are filled here from the results already stored (completed runs, oldest first),
and kept up to date from then on as each run completes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

RECENT = 10
CHUNK = 1000
_LETTER = {"pass": "p", "fail": "f"}


def _key() -> list[sa.Column]:
    return [
        sa.Column("test_case_id", sa.String(64), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("environment_id", sa.String(64), nullable=False),
        sa.Column("firmware_version", sa.Text(), nullable=False),
    ]


def _run_ref(name: str) -> list[sa.Column]:
    return [
        sa.Column(f"{name}_run_id", sa.String(64), nullable=True),
        sa.Column(f"{name}_at", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    op.create_index(
        "ix_test_run_devices_firmware_version_run_created_at",
        "test_run_devices",
        ["firmware_version", "run_created_at"],
    )
    summaries = op.create_table(
        "result_summaries",
        *_key(),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("inconclusive", sa.Integer(), nullable=False),
        sa.Column("recent", sa.String(16), nullable=False),
        *_run_ref("oldest"),
        *_run_ref("newest"),
        *_run_ref("newest_pass"),
        *_run_ref("oldest_pass"),
        *_run_ref("oldest_fail"),
        sa.PrimaryKeyConstraint(
            "test_case_id",
            "model",
            "environment_id",
            "firmware_version",
            name="pk_result_summaries",
        ),
    )
    op.create_index(
        "ix_result_summaries_firmware_version", "result_summaries", ["firmware_version"]
    )
    metrics = op.create_table(
        "result_metric_summaries",
        *_key(),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("condition", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("total_squares", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "test_case_id",
            "model",
            "environment_id",
            "firmware_version",
            "metric",
            "condition",
            name="pk_result_metric_summaries",
        ),
    )
    op.create_index(
        "ix_result_metric_summaries_firmware_version",
        "result_metric_summaries",
        ["firmware_version"],
    )
    _fill(summaries, metrics)


def _fill(summaries: sa.Table, metrics: sa.Table) -> None:
    """Sum up the results stored so far, oldest first (as the code does run by run)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT r.test_case_id, d.snapshot AS device, t.environment_id, d.firmware_version, "
            "r.verdict, r.run_id, t.finished_at, r.measurements "
            "FROM test_run_results r "
            "JOIN test_run_devices d ON d.run_id = r.run_id AND d.device_id = r.device_id "
            "JOIN test_runs t ON t.id = r.run_id "
            "WHERE t.status = 'completed' AND t.finished_at IS NOT NULL "
            "ORDER BY t.finished_at, r.run_id, r.device_id"
        ).columns(finished_at=sa.DateTime(timezone=True)),
        execution_options={"stream_results": True},
    )
    found: dict[tuple, dict[str, Any]] = {}
    measured: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        device = _document(row.device)
        key = (
            row.test_case_id,
            device.get("model") or "",
            row.environment_id,
            row.firmware_version,
        )
        ref = (row.run_id, row.finished_at)
        summary = found.setdefault(
            key, {"passed": 0, "failed": 0, "inconclusive": 0, "recent": "", "oldest": ref}
        )
        letter = _LETTER.get(row.verdict, "i")
        summary[{"p": "passed", "f": "failed", "i": "inconclusive"}[letter]] += 1
        summary["recent"] = (letter + summary["recent"])[:RECENT]
        summary["newest"] = ref
        if letter == "p":
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
    names = ("test_case_id", "model", "environment_id", "firmware_version")
    summary_rows = []
    for key, summary in found.items():
        row = {**dict(zip(names, key, strict=True)), **{k: summary[k] for k in _COUNTS}}
        for ref in ("oldest", "newest", "newest_pass", "oldest_pass", "oldest_fail"):
            run_id, at = summary.get(ref, (None, None))
            row[f"{ref}_run_id"], row[f"{ref}_at"] = run_id, at
        summary_rows.append(row)
    metric_rows = [
        {**dict(zip((*names, "metric", "condition"), label, strict=True)), **sums}
        for label, sums in measured.items()
    ]
    for table, chunk_rows in ((summaries, summary_rows), (metrics, metric_rows)):
        for start in range(0, len(chunk_rows), CHUNK):
            bind.execute(table.insert(), chunk_rows[start : start + CHUNK])


_COUNTS = ("passed", "failed", "inconclusive", "recent")


def _document(value: Any) -> Any:
    """A JSON column as read with a text query: decoded on PostgreSQL, text on SQLite."""
    return json.loads(value) if isinstance(value, str) else (value or {})


def downgrade() -> None:
    op.drop_index("ix_result_metric_summaries_firmware_version", "result_metric_summaries")
    op.drop_table("result_metric_summaries")
    op.drop_index("ix_result_summaries_firmware_version", "result_summaries")
    op.drop_table("result_summaries")
    op.drop_index(
        "ix_test_run_devices_firmware_version_run_created_at", table_name="test_run_devices"
    )
