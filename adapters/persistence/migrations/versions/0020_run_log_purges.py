"""When a run's log was purged (`devicelab logs purge --older-than 90d`).

- run_log_totals.purged_at: set when the run's lines were deleted and one marker line left in
  their place; a purged log is never purged again. Null for every log stored before.
- ix_run_log_totals_not_purged: a partial index of the logs not purged, so that a purge finds
  the few recent runs still to look at without reading past every run purged before.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_NOT_PURGED = sa.text("purged_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("run_log_totals") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_run_log_totals_not_purged",
        "run_log_totals",
        ["run_id"],
        postgresql_where=_NOT_PURGED,
        sqlite_where=_NOT_PURGED,
    )


def downgrade() -> None:
    op.drop_index("ix_run_log_totals_not_purged", table_name="run_log_totals")
    with op.batch_alter_table("run_log_totals") as batch:
        batch.drop_column("purged_at")
