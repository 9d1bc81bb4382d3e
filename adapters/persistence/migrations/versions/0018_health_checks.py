"""Health checks: designations, device health and the purpose of a run.

- health_checks: a test case (and environment) the worker runs by itself on every device of
  a model and/or with labels, every_hours and/or every_runs, and after_service (when the
  device comes back from maintenance or offline).
- devices.health (good | unknown | bad, default unknown: no device has been checked yet) with
  health_run_id, health_reason, health_by, health_since (what set it); health_checked_at,
  runs_since_health_check, health_check_owed (what makes the next check due).
- test_runs.purpose (normal | health_check, default normal: every run so far was started by
  a person or a pipeline); health-check runs stay out of statistics and comparisons.
- ix_test_runs_purpose_status: the worker's "which devices have a check under way".

Revision ID: 0018
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "health_checks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("test_case_id", sa.String(64), nullable=False),
        sa.Column("environment_id", sa.String(64), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("labels", _json(), nullable=False),
        sa.Column("every_hours", sa.Float(), nullable=True),
        sa.Column("every_runs", sa.Integer(), nullable=True),
        sa.Column("after_service", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_health_checks"),
    )
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("health", sa.String(16), nullable=False, server_default="unknown")
        )
        batch.add_column(sa.Column("health_run_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("health_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("health_by", sa.Text(), nullable=True))
        batch.add_column(sa.Column("health_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("health_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("runs_since_health_check", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("health_check_owed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("test_runs") as batch:
        batch.add_column(
            sa.Column("purpose", sa.String(16), nullable=False, server_default="normal")
        )
    op.create_index("ix_test_runs_purpose_status", "test_runs", ["purpose", "status"])


def downgrade() -> None:
    op.drop_index("ix_test_runs_purpose_status", table_name="test_runs")
    with op.batch_alter_table("test_runs") as batch:
        batch.drop_column("purpose")
    with op.batch_alter_table("devices") as batch:
        for column in (
            "health_check_owed",
            "runs_since_health_check",
            "health_checked_at",
            "health_since",
            "health_by",
            "health_reason",
            "health_run_id",
            "health",
        ):
            batch.drop_column(column)
    op.drop_table("health_checks")
