"""Leases of open live streams, for the per-user cap on /api/events.

- stream_leases: one row per open event stream, in one of its user's numbered slots
  (unique per user), with the time its lease runs out unless the stream renews it. A new
  table: existing rows of other tables are not touched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_leases",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stream_leases"),
        sa.UniqueConstraint("user_id", "slot", name="uq_stream_leases_user_id_slot"),
    )
    op.create_index("ix_stream_leases_expires_at", "stream_leases", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_stream_leases_expires_at", table_name="stream_leases")
    op.drop_table("stream_leases")
