"""Initial schema: devices with labels and status history, test cases, environments, test
runs with their case/device snapshots and results, and the outbox of runner messages.

Written by hand for SQLite and PostgreSQL. Names and ids that lists sort on use the "C"
collation on PostgreSQL so their order is code-point order on every backend. Run rows keep
no foreign key to environments, test cases or devices: those may be deleted while the run's
snapshot of them stays.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _key(length: int) -> sa.types.TypeEngine:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", _key(64), nullable=False),
        sa.Column("name", _key(200), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("firmware_version", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("held_by", sa.String(64), nullable=True),
        sa.Column("marked_offline", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_seen_at", _time(), nullable=True),
        sa.Column("created_at", _time(), nullable=True),
        sa.Column("updated_at", _time(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.UniqueConstraint("name", name="uq_devices_name"),
    )
    op.create_index("ix_devices_status_name", "devices", ["status", "name"])
    op.create_index("ix_devices_last_seen_at", "devices", ["last_seen_at"])

    op.create_table(
        "device_labels",
        sa.Column("device_id", _key(64), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "key", name="pk_device_labels"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_device_labels_device_id_devices",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_device_labels_key_value", "device_labels", ["key", "value"])

    op.create_table(
        "device_status_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device_id", _key(64), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_device_status_changes"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_device_status_changes_device_id_devices",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_device_status_changes_device_id_id", "device_status_changes", ["device_id", "id"]
    )

    op.create_table(
        "test_cases",
        sa.Column("id", _key(64), nullable=False),
        sa.Column("name", _key(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("criteria", _json(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("timeout_s", sa.Integer(), nullable=False),
        sa.Column("default_parameters", _json(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _time(), nullable=True),
        sa.Column("updated_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_test_cases"),
        sa.UniqueConstraint("name", name="uq_test_cases_name"),
    )

    op.create_table(
        "environments",
        sa.Column("id", _key(64), nullable=False),
        sa.Column("name", _key(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("variables", _json(), nullable=False),
        sa.Column("created_at", _time(), nullable=True),
        sa.Column("updated_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_environments"),
        sa.UniqueConstraint("name", name="uq_environments_name"),
    )

    op.create_table(
        "test_runs",
        sa.Column("id", _key(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("environment_id", sa.String(64), nullable=False),
        sa.Column("environment", _json(), nullable=False),
        sa.Column("parameters", _json(), nullable=False),
        sa.Column("started_by", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("finished_at", _time(), nullable=True),
        sa.Column("deadline", _time(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("progress_message", sa.Text(), nullable=False),
        sa.Column("last_report_at", _time(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_test_runs"),
    )
    op.create_index("ix_test_runs_created_at_id", "test_runs", ["created_at", "id"])
    op.create_index("ix_test_runs_status_created_at", "test_runs", ["status", "created_at"])
    op.create_index("ix_test_runs_verdict_created_at", "test_runs", ["verdict", "created_at"])
    op.create_index(
        "ix_test_runs_environment_id_created_at", "test_runs", ["environment_id", "created_at"]
    )
    op.create_index("ix_test_runs_status_deadline", "test_runs", ["status", "deadline"])

    op.create_table(
        "test_run_cases",
        sa.Column("run_id", _key(64), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("test_case_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("snapshot", _json(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "position", name="pk_test_run_cases"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["test_runs.id"],
            name="fk_test_run_cases_run_id_test_runs",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_test_run_cases_test_case_id_run_id", "test_run_cases", ["test_case_id", "run_id"]
    )

    op.create_table(
        "test_run_devices",
        sa.Column("run_id", _key(64), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("firmware_version", sa.Text(), nullable=False),
        sa.Column("snapshot", _json(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "position", name="pk_test_run_devices"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["test_runs.id"],
            name="fk_test_run_devices_run_id_test_runs",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_test_run_devices_device_id_run_id", "test_run_devices", ["device_id", "run_id"]
    )
    op.create_index(
        "ix_test_run_devices_firmware_version_run_id",
        "test_run_devices",
        ["firmware_version", "run_id"],
    )

    op.create_table(
        "test_run_results",
        sa.Column("run_id", _key(64), nullable=False),
        sa.Column("test_case_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("measurements", _json(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("finished_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "test_case_id", "device_id", name="pk_test_run_results"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["test_runs.id"],
            name="fk_test_run_results_run_id_test_runs",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("sent_at", _time(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_sent_at_created_at", "outbox", ["sent_at", "created_at"])


def downgrade() -> None:
    # children before parents, so no foreign key is ever left dangling
    for table in (
        "outbox",
        "test_run_results",
        "test_run_devices",
        "test_run_cases",
        "test_runs",
        "environments",
        "test_cases",
        "device_status_changes",
        "device_labels",
        "devices",
    ):
        op.drop_table(table)
