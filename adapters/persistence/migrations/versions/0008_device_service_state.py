"""A device's service state replaces its `marked_offline` flag (maintenance, retired, drain).

- devices.service_state: in_service | silent | offline | maintenance | retired, with
  service_by, service_reason and service_since (who set it, why, since when; null while in
  service). `silent` is offline by missing heartbeats, which a heartbeat ends; `offline` is
  offline by hand, which only a person ends.
- existing rows: a device not marked offline is in service. A device marked offline is
  `silent` when the status change that took it offline was the heartbeat monitor's, and
  offline by hand otherwise (also when no such change is on record: sticky is the safe side);
  who, why and when come from that change, else from the device's last update.
- devices.marked_offline is dropped; devices.status (derived) is recomputed and stays what it
  was, since silent and offline both show as `offline`.

Downgrade: every state but in_service becomes marked_offline, and the statuses 0008 added
(maintenance, retired) become `offline`, in the devices and in their status history.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MONITOR = "heartbeat monitor"  # the actor application.use_cases.devices records for silence

devices = sa.table(
    "devices",
    sa.column("id", sa.String()),
    sa.column("held_by", sa.String()),
    sa.column("marked_offline", sa.Boolean()),
    sa.column("status", sa.String()),
    sa.column("service_state", sa.String()),
    sa.column("service_by", sa.Text()),
    sa.column("service_reason", sa.Text()),
    sa.column("service_since", sa.DateTime(timezone=True)),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
changes = sa.table(
    "device_status_changes",
    sa.column("id", sa.Integer()),
    sa.column("device_id", sa.String()),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("from_status", sa.String()),
    sa.column("to_status", sa.String()),
    sa.column("actor", sa.Text()),
    sa.column("reason", sa.Text()),
)


def _of_last_offline_change(column: sa.ColumnElement) -> sa.ScalarSelect:
    """`column` of the device's latest change to offline, as a correlated subquery."""
    return (
        sa.select(column)
        .where(changes.c.device_id == devices.c.id, changes.c.to_status == "offline")
        .order_by(changes.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _status() -> sa.Case:
    return sa.case(
        (devices.c.held_by.is_not(None), "in_test"),
        (devices.c.service_state == "in_service", "available"),
        (devices.c.service_state.in_(["silent", "offline"]), "offline"),
        else_=devices.c.service_state,
    )


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("service_state", sa.String(16), nullable=True))
        batch.add_column(sa.Column("service_by", sa.Text(), nullable=True))
        batch.add_column(sa.Column("service_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("service_since", sa.DateTime(timezone=True), nullable=True))

    op.execute(
        devices.update()
        .where(devices.c.marked_offline.is_not(sa.true()))
        .values(service_state="in_service")
    )
    actor = _of_last_offline_change(changes.c.actor)
    op.execute(
        devices.update()
        .where(devices.c.marked_offline.is_(sa.true()))
        .values(
            service_state=sa.case((actor == MONITOR, "silent"), else_="offline"),
            service_by=sa.func.coalesce(actor, "unknown (before revision 0008)"),
            service_reason=sa.func.coalesce(_of_last_offline_change(changes.c.reason), ""),
            service_since=sa.func.coalesce(
                _of_last_offline_change(changes.c.at),
                devices.c.updated_at,
                devices.c.created_at,
                sa.func.current_timestamp(),
            ),
        )
    )
    op.execute(devices.update().values(status=_status()))

    with op.batch_alter_table("devices") as batch:
        batch.alter_column("service_state", existing_type=sa.String(16), nullable=False)
        batch.drop_column("marked_offline")


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("marked_offline", sa.Boolean(), nullable=True))
    op.execute(devices.update().values(marked_offline=devices.c.service_state != "in_service"))
    op.execute(
        devices.update()
        .where(devices.c.status.in_(["maintenance", "retired"]))
        .values(status="offline")
    )
    for column in ("from_status", "to_status"):
        op.execute(
            changes.update()
            .where(changes.c[column].in_(["maintenance", "retired"]))
            .values({column: "offline"})
        )
    with op.batch_alter_table("devices") as batch:
        batch.alter_column("marked_offline", existing_type=sa.Boolean(), nullable=False)
        batch.drop_column("service_since")
        batch.drop_column("service_reason")
        batch.drop_column("service_by")
        batch.drop_column("service_state")
