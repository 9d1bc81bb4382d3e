"""Password resets by an admin, and where a session was opened from.

`users.must_change_password`: a temporary password from an admin's reset is in force; the
user's sessions may do nothing but change it. Existing users get false. `sessions.client_ip`:
the address the session was opened from, shown on the account page; sessions opened before
this revision get '' (unknown).

Revision ID: a0002
Revises: a0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a0002"
down_revision = "a0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the server defaults fill the rows already there (SQLite needs one for NOT NULL, too)
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "sessions", sa.Column("client_ip", sa.String(64), nullable=False, server_default="")
    )


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35+): a batch copy of `users` would cascade to the sessions
    op.drop_column("sessions", "client_ip")
    op.drop_column("users", "must_change_password")
