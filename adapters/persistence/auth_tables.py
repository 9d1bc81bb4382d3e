"""The auth store's schema (users, sessions, API tokens, the login limit's counters), as
SQLAlchemy Core tables.

A metadata of its own, migrated by its own Alembic history (`auth_migrations/`, version table
`alembic_version_auth`), so the auth store can live in the lab's database or in another one
(DEVICELAB_AUTH_DATABASE_URL)."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.persistence.tables import NAMING_CONVENTION, UtcDateTime, key_text

VERSION_TABLE = "alembic_version_auth"
ID_LENGTH = 64
EMAIL_LENGTH = 254
TOKEN_HASH_LENGTH = 64  # SHA-256, hex
RATE_LIMIT_KEY_LENGTH = 255

auth_metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

users = sa.Table(
    "users",
    auth_metadata,
    sa.Column("id", key_text(ID_LENGTH), primary_key=True),
    # normalized (trimmed, lower case), so the unique constraint is case-insensitive
    sa.Column("email", key_text(EMAIL_LENGTH), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("disabled", sa.Boolean(), nullable=False),
    # a temporary password from an admin's reset is in force (a0002)
    sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    # a service account: no password, signs in only with API tokens (a0004)
    sa.Column("service_account", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'engineer', 'viewer')", name="role"),
)

sessions = sa.Table(
    "sessions",
    auth_metadata,
    sa.Column("id", key_text(ID_LENGTH), primary_key=True),
    sa.Column(
        "user_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("token_hash", sa.String(TOKEN_HASH_LENGTH), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_used_at", UtcDateTime(), nullable=False),
    sa.Column("idle_expires_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("absolute_expires_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("user_agent", sa.String(300), nullable=False),
    sa.Column("client_ip", sa.String(64), nullable=False, server_default=""),  # a0002
    sa.Index(None, "user_id", "created_at"),
)

# personal access tokens and service accounts' tokens (a0004): only the digest of the secret
api_tokens = sa.Table(
    "api_tokens",
    auth_metadata,
    sa.Column("id", key_text(ID_LENGTH), primary_key=True),
    sa.Column(
        "user_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(TOKEN_HASH_LENGTH), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("created_by", key_text(ID_LENGTH), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=True),  # null: never
    sa.Column("last_used_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    sa.CheckConstraint("scope IN ('read', 'run', 'full')", name="scope"),
    sa.Index(None, "user_id", "created_at"),
)

# the login rate limit's counted attempts, shared by every process (rate_limit_storage.py): one
# row per attempt, as epoch seconds (what the `limits` library computes in)
rate_limit_hits = sa.Table(
    "rate_limit_hits",
    auth_metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("key", key_text(RATE_LIMIT_KEY_LENGTH), nullable=False),
    sa.Column("hit_at", sa.Double(), nullable=False),
    sa.Column("expires_at", sa.Double(), nullable=False, index=True),
    sa.Index(None, "key", "expires_at"),
)
