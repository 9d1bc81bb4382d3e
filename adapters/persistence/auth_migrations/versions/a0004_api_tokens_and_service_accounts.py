"""API tokens and service accounts.

`api_tokens`: personal access tokens and service accounts' tokens, one row each, keeping the
SHA-256 digest of the token (unique: every request with a token looks it up by it), never the
token; its scope, optional expiry, last use and revocation. Indexed by owner and creation for
the owner's list; the rows go with their user. `users.service_account`: the user is a
pipeline's identity without a password; existing users get false (they are people).

Revision ID: a0004
Revises: a0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a0004"
down_revision = "a0003"
branch_labels = None
depends_on = None


def _key(length: int) -> sa.types.TypeEngine:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _time() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    # the server default fills the rows already there (SQLite needs one for NOT NULL, too)
    op.add_column(
        "users",
        sa.Column("service_account", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", _key(64), nullable=False),
        sa.Column("user_id", _key(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("created_by", _key(64), nullable=False),
        sa.Column("expires_at", _time(), nullable=True),
        sa.Column("last_used_at", _time(), nullable=True),
        sa.Column("revoked_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"
        ),
        sa.CheckConstraint("scope IN ('read', 'run', 'full')", name="ck_api_tokens_scope"),
    )
    op.create_index("ix_api_tokens_user_id_created_at", "api_tokens", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("api_tokens")
    # plain DROP COLUMN (SQLite 3.35+): a batch copy of `users` would cascade to the sessions
    op.drop_column("users", "service_account")
