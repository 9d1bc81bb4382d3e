"""The login rate limit's counters, shared by every process of an instance.

Without Redis, flask-limiter counted failed logins in each process's memory, so every
gunicorn worker allowed the configured attempts on its own. `rate_limit_hits` holds one row
per counted attempt (key, when, until when it counts), epoch seconds as the `limits` library
computes them; indexed by key and end for the count, and by end for the clean-up. A new,
empty table: the users and sessions already stored are not touched.

Revision ID: a0003
Revises: a0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a0003"
down_revision = "a0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "key",
            sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("hit_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rate_limit_hits"),
    )
    op.create_index("ix_rate_limit_hits_expires_at", "rate_limit_hits", ["expires_at"])
    op.create_index("ix_rate_limit_hits_key_expires_at", "rate_limit_hits", ["key", "expires_at"])


def downgrade() -> None:
    op.drop_table("rate_limit_hits")
