"""Runs that wait for their devices (the lab queue).

- test_runs.priority (low | normal | high; existing runs: normal), requested_device_ids and
  device_requests (JSON: the devices a run asked for by id and by kind; NULL for runs from
  before, which asked for exactly the devices they have), queue_timeout_at (when a waiting
  run gives up; NULL for runs from before). Status 'waiting' needs no schema change: the
  status column is free text of the domain's statuses.
- ix_test_runs_waiting: the waiting runs in submission order, a partial index so that it
  stays as small as the queue however many runs the lab keeps.
- test_run_devices.role: the role of the request a device fills (NULL for named devices,
  and for every booking from before).

Existing rows keep their meaning: no row is rewritten.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("test_runs") as batch:
        batch.add_column(
            sa.Column("priority", sa.String(16), nullable=False, server_default="normal")
        )
        batch.add_column(sa.Column("requested_device_ids", _json(), nullable=True))
        batch.add_column(sa.Column("device_requests", _json(), nullable=True))
        batch.add_column(sa.Column("queue_timeout_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_test_runs_waiting",
        "test_runs",
        ["created_at", "id"],
        postgresql_where=sa.text("status = 'waiting'"),
        sqlite_where=sa.text("status = 'waiting'"),
    )
    with op.batch_alter_table("test_run_devices") as batch:
        batch.add_column(sa.Column("role", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("test_run_devices") as batch:
        batch.drop_column("role")
    op.drop_index("ix_test_runs_waiting", table_name="test_runs")
    with op.batch_alter_table("test_runs") as batch:
        batch.drop_column("queue_timeout_at")
        batch.drop_column("device_requests")
        batch.drop_column("requested_device_ids")
        batch.drop_column("priority")
