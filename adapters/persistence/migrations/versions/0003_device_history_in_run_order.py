"""A device's runs in the order lists show them.

- test_run_devices.run_created_at: the run's created_at, copied onto each of its bookings
  (filled in for existing rows from test_runs);
- an index on (device_id, run_created_at, run_id), from which a device's newest runs come in
  list order, so a page of a busy bench's history no longer fetches and sorts all of its runs
  (the scale benchmark in bench/: 1 % of a million runs on one device).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("test_run_devices") as batch:
        batch.add_column(sa.Column("run_created_at", sa.DateTime(timezone=True), nullable=True))
    # a correlated subquery: the same statement on SQLite and PostgreSQL
    op.execute(
        "UPDATE test_run_devices SET run_created_at = "
        "(SELECT created_at FROM test_runs WHERE test_runs.id = test_run_devices.run_id)"
    )
    with op.batch_alter_table("test_run_devices") as batch:
        batch.alter_column(
            "run_created_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
    op.create_index(
        "ix_test_run_devices_device_id_run_created_at_run_id",
        "test_run_devices",
        ["device_id", "run_created_at", "run_id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_test_run_devices_device_id_run_created_at_run_id", table_name="test_run_devices"
    )
    with op.batch_alter_table("test_run_devices") as batch:
        batch.drop_column("run_created_at")
