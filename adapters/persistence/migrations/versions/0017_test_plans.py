"""Test plans, plan runs and firmware sightings.

- test_plans: a plan's definition as one JSON document, its content version, whether it has
  triggers, and until when its cron slots were looked at.
- plan_runs: the plan as it was, the cause and its debounce key (unique per plan: one plan
  run per cron slot, and per device and firmware version), the runs it made, its verdict.
- firmware_sightings: firmware versions devices reported, for the new-firmware trigger.

Nothing existing changes: the tables start empty, and firmware already on devices before the
upgrade is not a sighting (a plan runs on firmware reported after it was defined).

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _key_text(length: int) -> sa.types.TypeEngine:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "test_plans",
        sa.Column("id", _key_text(64), nullable=False),
        sa.Column("name", _key_text(200), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("definition", _json(), nullable=False),
        sa.Column("triggered", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _time(), nullable=True),
        sa.Column("updated_at", _time(), nullable=True),
        sa.Column("cron_checked_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_test_plans"),
        sa.UniqueConstraint("name", name="uq_test_plans_name"),
        sa.UniqueConstraint("name_key", name="uq_test_plans_name_key"),
    )
    op.create_table(
        "plan_runs",
        sa.Column("id", _key_text(64), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("plan", _json(), nullable=False),
        sa.Column("cause", _json(), nullable=False),
        sa.Column("cause_key", sa.String(300), nullable=True),
        sa.Column("runs", _json(), nullable=False),
        sa.Column("skipped", _json(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("finished_at", _time(), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_plan_runs"),
        sa.UniqueConstraint("plan_id", "cause_key", name="uq_plan_runs_plan_id_cause_key"),
    )
    op.create_index("ix_plan_runs_plan_id_created_at", "plan_runs", ["plan_id", "created_at"])
    op.create_index("ix_plan_runs_created_at", "plan_runs", ["created_at"])
    op.create_index("ix_plan_runs_finished_at", "plan_runs", ["finished_at"])
    op.create_table(
        "firmware_sightings",
        sa.Column("id", sa.String(300), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("firmware_version", sa.Text(), nullable=False),
        sa.Column("seen_at", _time(), nullable=False),
        sa.Column("done_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_firmware_sightings"),
    )
    op.create_index(
        "ix_firmware_sightings_done_at_seen_at", "firmware_sightings", ["done_at", "seen_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_firmware_sightings_done_at_seen_at", table_name="firmware_sightings")
    op.drop_table("firmware_sightings")
    op.drop_index("ix_plan_runs_finished_at", table_name="plan_runs")
    op.drop_index("ix_plan_runs_created_at", table_name="plan_runs")
    op.drop_index("ix_plan_runs_plan_id_created_at", table_name="plan_runs")
    op.drop_table("plan_runs")
    op.drop_table("test_plans")
