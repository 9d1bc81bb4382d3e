"""The runner registry.

- runners: one row per Test Runner id devicelab has heard from (domain.runners.Runner): what
  it says about itself (host, version, executors), when it was first and last heard from,
  how many of the runs it had claimed ended and how many of those failed (status `failed`,
  which includes the reaper's `timeout`), and whether an admin drained it (by whom, when,
  why).
- ix_test_runs_runner_created_at: a runner's recent runs, newest first.

Filled here from the runs already stored that name a runner: first seen at its earliest
run's start, last seen at its latest report, its finished runs and failed runs counted.
Runs from before runners reported their host, version and executors leave those empty until
the runner next reports.

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

FINISHED = ("completed", "failed", "aborted")


def _key_text(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_index("ix_test_runs_runner_created_at", "test_runs", ["runner", "created_at"])
    runners = op.create_table(
        "runners",
        sa.Column("id", _key_text(200), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column(
            "executors", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runs_done", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("drained", sa.Boolean(), nullable=False),
        sa.Column("drained_by", sa.Text(), nullable=False),
        sa.Column("drained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drain_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runners"),
    )
    runs = sa.table(
        "test_runs",
        sa.column("runner", sa.Text()),
        sa.column("status", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("started_at", sa.DateTime(timezone=True)),
        sa.column("finished_at", sa.DateTime(timezone=True)),
        sa.column("last_report_at", sa.DateTime(timezone=True)),
    )
    no_executors: sa.ColumnElement = sa.literal("[]")
    if op.get_bind().dialect.name == "postgresql":
        no_executors = sa.cast(no_executors, postgresql.JSONB())
    seen_first = sa.func.min(sa.func.coalesce(runs.c.started_at, runs.c.created_at))
    seen_last = sa.func.max(
        sa.func.coalesce(runs.c.last_report_at, runs.c.finished_at, runs.c.started_at)
    )
    finished = sa.func.sum(sa.case((runs.c.status.in_(FINISHED), 1), else_=0))
    failed = sa.func.sum(sa.case((runs.c.status == "failed", 1), else_=0))
    per_runner = (
        sa.select(
            runs.c.runner,
            sa.literal(""),
            sa.literal(""),
            no_executors,
            seen_first,
            sa.func.coalesce(seen_last, seen_first),
            finished,
            failed,
            sa.false(),
            sa.literal(""),
            sa.literal(""),
        )
        .where(runs.c.runner != "", sa.func.length(runs.c.runner) <= 200)
        .group_by(runs.c.runner)
    )
    columns = [
        "id",
        "host",
        "version",
        "executors",
        "first_seen_at",
        "last_seen_at",
        "runs_done",
        "failures",
        "drained",
        "drained_by",
        "drain_reason",
    ]
    op.execute(runners.insert().from_select(columns, per_runner))


def downgrade() -> None:
    op.drop_table("runners")
    op.drop_index("ix_test_runs_runner_created_at", table_name="test_runs")
