"""Estimated starts of waiting runs and holds.

- test_runs.estimated_start_at: when the worker last estimated a waiting run gets its
  devices (NULL: not estimated, or it cannot be told). Written by the worker after its
  scheduling passes without bumping the run's version, and cleared when the run leaves the
  queue. Existing rows get NULL: nothing is rewritten.
- holds.estimated_start_at: the same for waiting holds.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("test_runs", "holds"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("estimated_start_at", sa.DateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    for table in ("holds", "test_runs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("estimated_start_at")
