"""Holds: devices kept for manual work, in the same queue as runs.

- holds: one row per hold (waiting, active, ended) with what it asked for, its times, and
  how it ended; ix_holds_waiting is a partial index of the waiting ones (the queue's holds),
  ix_holds_status_expires_at finds the expired ones for the worker.
- hold_devices: the devices a hold got, with the name, model and role they had then.
- devices.hold_holder, hold_until, hold_reason: who holds the device, until when and why,
  while a hold has it (devices.held_by then names the hold; it names a run otherwise).

Existing rows keep their meaning: no device is held by a hold yet, so the new columns are
NULL; devices.status stays free text of the domain's statuses ('held' is new).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _key(length: int) -> sa.types.TypeEngine:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", _key(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("requested_device_ids", _json(), nullable=False),
        sa.Column("device_requests", _json(), nullable=False),
        sa.Column("queue_timeout_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.Text(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
    )
    op.create_index("ix_holds_created_at_id", "holds", ["created_at", "id"])
    op.create_index("ix_holds_holder_created_at", "holds", ["holder", "created_at"])
    op.create_index("ix_holds_status_expires_at", "holds", ["status", "expires_at"])
    op.create_index(
        "ix_holds_waiting",
        "holds",
        ["created_at", "id"],
        postgresql_where=sa.text("status = 'waiting'"),
        sqlite_where=sa.text("status = 'waiting'"),
    )
    op.create_table(
        "hold_devices",
        sa.Column("hold_id", _key(64), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["holds.id"], name="fk_hold_devices_hold_id_holds", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("hold_id", "position", name="pk_hold_devices"),
    )
    op.create_index("ix_hold_devices_device_id_hold_id", "hold_devices", ["device_id", "hold_id"])
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("hold_holder", sa.Text(), nullable=True))
        batch.add_column(sa.Column("hold_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # the code before holds knows no held device: what a hold had is let go of
    op.execute(
        "UPDATE devices SET held_by = NULL, status = CASE service_state "
        "WHEN 'in_service' THEN 'available' WHEN 'silent' THEN 'offline' "
        "ELSE service_state END WHERE status = 'held'"
    )
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("hold_reason")
        batch.drop_column("hold_until")
        batch.drop_column("hold_holder")
    op.drop_index("ix_hold_devices_device_id_hold_id", table_name="hold_devices")
    op.drop_table("hold_devices")
    op.drop_index("ix_holds_waiting", table_name="holds")
    op.drop_index("ix_holds_status_expires_at", table_name="holds")
    op.drop_index("ix_holds_holder_created_at", table_name="holds")
    op.drop_index("ix_holds_created_at_id", table_name="holds")
    op.drop_table("holds")
