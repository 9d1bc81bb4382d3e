"""Re-offered jobs: a run remembers how often, and when last, its job was offered again.

- test_runs.reoffers (integer, 0 for existing rows) and test_runs.reoffered_at (nullable):
  the worker writes a run's job to the outbox again when the runner that claimed it has
  fallen silent, at most a few times per run and not again before the next silence.
  Existing rows have never been re-offered; nothing else changes. No index: the query
  looks only at running runs, which the status index finds.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("test_runs") as batch:
        batch.add_column(sa.Column("reoffers", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("reoffered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("test_runs") as batch:
        batch.drop_column("reoffered_at")
        batch.drop_column("reoffers")
