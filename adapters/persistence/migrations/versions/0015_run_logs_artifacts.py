"""A run's logs and artifacts.

- run_log_lines: the lines runners send, numbered per run by devicelab (`seq`, from 1), with
  their time, level, message and, when given, device and test case.
- run_log_totals: per run, the last number given, the bytes stored and whether the log was
  cut at the run's limits (its row is locked while a batch is numbered).
- run_artifacts: the files runners upload, with name (unique per run), content type, size,
  sha256, device and test case.
- artifact_chunks: the artifacts' bytes when they are kept in the database (the setting for
  several API replicas on PostgreSQL), in chunks by artifact key.

New tables only: existing rows are not touched. Deleting a run deletes its lines and
artifact records.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def _run_key() -> sa.types.TypeEngine:
    # as test_runs.id: code-point collation on PostgreSQL
    return sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["test_runs.id"], name=f"fk_{table}_run_id_test_runs", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "run_log_lines",
        sa.Column("run_id", _run_key(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("test_case_id", sa.String(64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_run_log_lines"),
        _run_fk("run_log_lines"),
    )
    op.create_table(
        "run_log_totals",
        sa.Column("run_id", _run_key(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_run_log_totals"),
        _run_fk("run_log_totals"),
    )
    op.create_table(
        "run_artifacts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("run_id", _run_key(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("test_case_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_artifacts"),
        sa.UniqueConstraint("run_id", "name", name="uq_run_artifacts_run_id_name"),
        _run_fk("run_artifacts"),
    )
    op.create_index("ix_run_artifacts_created_at", "run_artifacts", ["created_at"])
    op.create_table(
        "artifact_chunks",
        sa.Column("artifact_key", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("artifact_key", "seq", name="pk_artifact_chunks"),
    )


def downgrade() -> None:
    op.drop_table("artifact_chunks")
    op.drop_index("ix_run_artifacts_created_at", table_name="run_artifacts")
    op.drop_table("run_artifacts")
    op.drop_table("run_log_totals")
    op.drop_table("run_log_lines")
