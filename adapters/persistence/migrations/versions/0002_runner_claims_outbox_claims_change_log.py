"""Runner claims, outbox claims and the change log.

- test_runs.runner: which runner executes a run, so a redelivered job is not run twice.
- outbox.claimed_until: a relay claims messages before publishing them, so several relays
  can run and none holds a database lock while the broker is slow.
- change_log: every change of a device or run, in commit order, for the live event stream.
- an index for the dashboard's "finished per day" statistics.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("test_runs") as batch:
        batch.add_column(sa.Column("runner", sa.Text(), nullable=False, server_default=""))
    op.create_index("ix_test_runs_status_finished_at", "test_runs", ["status", "finished_at"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "change_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_change_log"),
    )
    op.create_index("ix_change_log_at", "change_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_change_log_at", table_name="change_log")
    op.drop_table("change_log")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_until")
    op.drop_index("ix_test_runs_status_finished_at", table_name="test_runs")
    with op.batch_alter_table("test_runs") as batch:
        batch.drop_column("runner")
