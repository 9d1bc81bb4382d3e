"""The relational schema, as SQLAlchemy Core tables.

The repositories query through these tables, and the schema tests compare them with what the
migrations build. They never create anything themselves: the schema comes only from the
Alembic migrations in `migrations/`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite keeps no time zone, so values are converted to UTC on the way in and given the UTC
    zone on the way out; PostgreSQL's `timestamptz` is normalised to UTC as well. A naive
    datetime is refused: which zone it meant cannot be known here."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored; add tzinfo")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # stored as text; all values in UTC keeps text order equal to time order
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return _as_utc(value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """`_as_utc` itself (after the dialect's own conversion, SQLite's text to datetime),
        not TypeDecorator's wrapper around `process_result_value`: a page of 50 devices
        converts 350 timestamps, and the wrapper's extra call was most of their cost."""
        impl_processor = self.impl_instance.result_processor(dialect, coltype)
        if impl_processor is None:
            return _as_utc
        return lambda value: _as_utc(impl_processor(value))


def _as_utc(value: datetime | None) -> datetime | None:
    """A stored timestamp as an aware datetime in UTC (naive ones are UTC: SQLite's)."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is UTC:  # what psycopg2 gives when the session's time zone is UTC
        return value
    if zone is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def json_document() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def key_text(length: int) -> sa.types.TypeEngine[str]:
    """Text that is sorted on (names and ids, the keys of keyset pagination).

    On PostgreSQL the collation is "C": code-point order, the order Python sorts strings in
    (and the order SQLite's default BINARY collation gives), whatever locale the database
    was created with."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


ID_LENGTH = 64
NAME_LENGTH = 200
STATUS_LENGTH = 16

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", key_text(ID_LENGTH), primary_key=True),
    sa.Column("name", key_text(NAME_LENGTH), nullable=False),
    # domain.names.name_key(name): unique, so names differing only in case or Unicode form clash
    sa.Column("name_key", sa.Text(), nullable=False),
    sa.Column("model", sa.Text(), nullable=False),
    sa.Column("serial", sa.Text(), nullable=False),
    sa.Column("firmware_version", sa.Text(), nullable=False),
    sa.Column("location", sa.Text(), nullable=False),
    # the run or hold that has the device (one column: a device is never booked twice)
    sa.Column("held_by", sa.String(ID_LENGTH), nullable=True),
    # while a hold has it: who holds it, until when and why (all null otherwise)
    sa.Column("hold_holder", sa.Text(), nullable=True),
    sa.Column("hold_until", UtcDateTime(), nullable=True),
    sa.Column("hold_reason", sa.Text(), nullable=True),
    # in_service | silent | offline | maintenance | retired (domain.devices.ServiceState),
    # with who set it, why and since when (all null while in service)
    sa.Column("service_state", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("service_by", sa.Text(), nullable=True),
    sa.Column("service_reason", sa.Text(), nullable=True),
    sa.Column("service_since", UtcDateTime(), nullable=True),
    # derived from held_by and service_state (Device.status); stored so lists can filter on it
    sa.Column("status", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=True),
    sa.Column("version", sa.Integer(), nullable=False),
    # good | unknown | bad (domain.health.DeviceHealth), with the run, reason, who and since
    # when; then what makes the next health check due (migration 0018)
    sa.Column("health", sa.String(STATUS_LENGTH), nullable=False, server_default="unknown"),
    sa.Column("health_run_id", sa.String(ID_LENGTH), nullable=True),
    sa.Column("health_reason", sa.Text(), nullable=True),
    sa.Column("health_by", sa.Text(), nullable=True),
    sa.Column("health_since", UtcDateTime(), nullable=True),
    sa.Column("health_checked_at", UtcDateTime(), nullable=True),
    sa.Column("runs_since_health_check", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("health_check_owed", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("name", name="uq_devices_name"),
    sa.UniqueConstraint("name_key", name="uq_devices_name_key"),
    sa.Index("ix_devices_status_name", "status", "name"),
    sa.Index("ix_devices_last_seen_at", "last_seen_at"),
)

device_labels = sa.Table(
    "device_labels",
    metadata,
    sa.Column(
        "device_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("devices.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.Text(), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Index("ix_device_labels_key_value", "key", "value"),
)

device_status_changes = sa.Table(
    "device_status_changes",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column(
        "device_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("devices.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("from_status", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("to_status", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("actor", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("run_id", sa.String(ID_LENGTH), nullable=True),
    sa.Index("ix_device_status_changes_device_id_id", "device_id", "id"),
)

test_cases = sa.Table(
    "test_cases",
    metadata,
    sa.Column("id", key_text(ID_LENGTH), primary_key=True),
    sa.Column("name", key_text(NAME_LENGTH), nullable=False),
    # domain.names.name_key(name): unique, so names differing only in case or Unicode form clash
    sa.Column("name_key", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("criteria", json_document(), nullable=False),
    sa.Column("duration_s", sa.Integer(), nullable=False),
    sa.Column("timeout_s", sa.Integer(), nullable=False),
    sa.Column("default_parameters", json_document(), nullable=False),
    sa.Column("tags", json_document(), nullable=False),
    # how the case is executed (domain.execution.Execution as JSON); set by admins only
    sa.Column("execution", json_document(), nullable=False),
    # the content version (TestCase.version): bumped by real edits, copied into run snapshots
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("name", name="uq_test_cases_name"),
    sa.UniqueConstraint("name_key", name="uq_test_cases_name_key"),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("id", key_text(ID_LENGTH), primary_key=True),
    sa.Column("name", key_text(NAME_LENGTH), nullable=False),
    # domain.names.name_key(name): unique, so names differing only in case or Unicode form clash
    sa.Column("name_key", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("variables", json_document(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("name", name="uq_environments_name"),
    sa.UniqueConstraint("name_key", name="uq_environments_name_key"),
)

test_runs = sa.Table(
    "test_runs",
    metadata,
    sa.Column("id", key_text(ID_LENGTH), primary_key=True),
    sa.Column("status", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("verdict", sa.String(STATUS_LENGTH), nullable=True),
    # no foreign key: an environment may be deleted, the run keeps its snapshot
    sa.Column("environment_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("environment", json_document(), nullable=False),
    sa.Column("parameters", json_document(), nullable=False),
    sa.Column("started_by", sa.Text(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("deadline", UtcDateTime(), nullable=False),
    sa.Column("failure_reason", sa.Text(), nullable=False),
    sa.Column("progress", sa.Float(), nullable=False),
    sa.Column("progress_message", sa.Text(), nullable=False),
    sa.Column("last_report_at", UtcDateTime(), nullable=True),
    sa.Column("runner", sa.Text(), nullable=False, server_default=""),
    sa.Column("reoffers", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("reoffered_at", UtcDateTime(), nullable=True),
    sa.Column("version", sa.Integer(), nullable=False),
    # what the run asked for (NULL for runs from before the queue: exactly their devices)
    sa.Column("priority", sa.String(STATUS_LENGTH), nullable=False, server_default="normal"),
    sa.Column("requested_device_ids", json_document(), nullable=True),
    sa.Column("device_requests", json_document(), nullable=True),
    sa.Column("queue_timeout_at", UtcDateTime(), nullable=True),
    # the worker's estimate while the run waits (NULL: not told); written without a version bump
    sa.Column("estimated_start_at", UtcDateTime(), nullable=True),
    # normal | health_check (domain.test_runs.RunPurpose); health checks stay out of statistics
    sa.Column("purpose", sa.String(STATUS_LENGTH), nullable=False, server_default="normal"),
    sa.Index("ix_test_runs_created_at_id", "created_at", "id"),
    # the queue: only waiting runs, in submission order
    sa.Index(
        "ix_test_runs_waiting",
        "created_at",
        "id",
        postgresql_where=sa.text("status = 'waiting'"),
        sqlite_where=sa.text("status = 'waiting'"),
    ),
    sa.Index("ix_test_runs_status_created_at", "status", "created_at"),
    sa.Index("ix_test_runs_verdict_created_at", "verdict", "created_at"),
    sa.Index("ix_test_runs_environment_id_created_at", "environment_id", "created_at"),
    sa.Index("ix_test_runs_status_deadline", "status", "deadline"),
    sa.Index("ix_test_runs_status_finished_at", "status", "finished_at"),
    sa.Index("ix_test_runs_purpose_status", "purpose", "status"),
    # a runner's recent runs (migration 0016)
    sa.Index("ix_test_runs_runner_created_at", "runner", "created_at"),
)

test_run_cases = sa.Table(
    "test_run_cases",
    metadata,
    sa.Column(
        "run_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("test_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer(), primary_key=True, autoincrement=False),
    # no foreign key: the case may be deleted, the run keeps its snapshot
    sa.Column("test_case_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("snapshot", json_document(), nullable=False),
    sa.Index("ix_test_run_cases_test_case_id_run_id", "test_case_id", "run_id"),
)

test_run_devices = sa.Table(
    "test_run_devices",
    metadata,
    sa.Column(
        "run_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("test_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer(), primary_key=True, autoincrement=False),
    # no foreign key: the device may be deleted, the run keeps its snapshot
    sa.Column("device_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("firmware_version", sa.Text(), nullable=False),
    sa.Column("snapshot", json_document(), nullable=False),
    # the run's created_at, so a device's runs can be listed newest first from an index
    sa.Column("run_created_at", UtcDateTime(), nullable=False),
    sa.Column("role", sa.Text(), nullable=True),  # of the request it fills; NULL: named
    sa.Index("ix_test_run_devices_device_id_run_id", "device_id", "run_id"),
    sa.Index(
        "ix_test_run_devices_device_id_run_created_at_run_id",
        "device_id",
        "run_created_at",
        "run_id",
    ),
    sa.Index("ix_test_run_devices_firmware_version_run_id", "firmware_version", "run_id"),
    # a comparison in a date window reads only that part of a firmware version's runs
    sa.Index(
        "ix_test_run_devices_firmware_version_run_created_at",
        "firmware_version",
        "run_created_at",
    ),
)

test_run_results = sa.Table(
    "test_run_results",
    metadata,
    sa.Column(
        "run_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("test_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("test_case_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("device_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("verdict", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("measurements", json_document(), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
)

# holds: devices kept for manual work (domain.holds), in the same queue as runs
holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", key_text(ID_LENGTH), primary_key=True),
    sa.Column("status", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("holder", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("priority", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("duration_s", sa.Integer(), nullable=False),
    # what it asked for: devices by id and by kind (JSON lists)
    sa.Column("requested_device_ids", json_document(), nullable=False),
    sa.Column("device_requests", json_document(), nullable=False),
    sa.Column("queue_timeout_at", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("ended_at", UtcDateTime(), nullable=True),
    sa.Column("ended_by", sa.Text(), nullable=True),
    sa.Column("end_reason", sa.Text(), nullable=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("estimated_start_at", UtcDateTime(), nullable=True),
    sa.Index("ix_holds_created_at_id", "created_at", "id"),
    sa.Index("ix_holds_holder_created_at", "holder", "created_at"),
    sa.Index("ix_holds_status_expires_at", "status", "expires_at"),
    # the queue's holds: only waiting ones, in submission order
    sa.Index(
        "ix_holds_waiting",
        "created_at",
        "id",
        postgresql_where=sa.text("status = 'waiting'"),
        sqlite_where=sa.text("status = 'waiting'"),
    ),
)

# the devices a hold got (once it is active), in booking order
hold_devices = sa.Table(
    "hold_devices",
    metadata,
    sa.Column(
        "hold_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("holds.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer(), primary_key=True, autoincrement=False),
    # no foreign key: the device may be deleted later, the hold keeps what it had
    sa.Column("device_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("model", sa.Text(), nullable=False),
    sa.Column("role", sa.Text(), nullable=True),
    sa.Index("ix_hold_devices_device_id_hold_id", "device_id", "hold_id"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("payload", json_document(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("claimed_until", UtcDateTime(), nullable=True),
    sa.Index("ix_outbox_sent_at_created_at", "sent_at", "created_at"),
)

change_log = sa.Table(
    "change_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("entity_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Index("ix_change_log_at", "at"),
)

# the open live streams (application.use_cases.live_streams): one row per stream, in one of
# its user's numbered slots; the unique key is what stops two processes taking the same slot
stream_leases = sa.Table(
    "stream_leases",
    metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("user_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("slot", sa.Integer(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("user_id", "slot", name="uq_stream_leases_user_id_slot"),
    sa.Index("ix_stream_leases_expires_at", "expires_at"),
)

# -- webhooks (domain/webhooks.py) ------------------------------------------------------------

webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("owner_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("owner_email", sa.Text(), nullable=False),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("events", json_document(), nullable=False),
    sa.Column("only_fail", sa.Boolean(), nullable=False),
    sa.Column("secret", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index("ix_webhook_subscriptions_owner_id", "owner_id"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column(
        "subscription_id",
        sa.String(ID_LENGTH),
        sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event", sa.String(50), nullable=False),
    sa.Column("event_key", sa.String(300), nullable=False),
    sa.Column("payload", json_document(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=False),
    sa.Column("last_status_code", sa.Integer(), nullable=True),
    sa.Column("last_attempt_at", UtcDateTime(), nullable=True),
    sa.Column("delivered_at", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # one delivery per subscription and event, however often the dispatcher reads the feed
    sa.UniqueConstraint(
        "subscription_id", "event_key", name="uq_webhook_deliveries_subscription_id_event_key"
    ),
    sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_subscription_id_created_at", "subscription_id", "created_at"),
)

# the dispatcher's place in the change feed ("cursor": JSON) and the status it last saw of
# each device ("device:<id>")
webhook_state = sa.Table(
    "webhook_state",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)


# The results of completed runs summed up per test case x model x environment x firmware
# (domain.comparison.Summary), kept up to date as each run completes (SqlResults.
# record_completed), so that comparing two firmware versions and tracking regressions read a
# few rows, not every result. `recent` holds the verdicts (p, f, i) of the newest
# domain.comparison.FLAKY_WINDOW results, newest first; times are when the run finished.


def _summary_key() -> list[sa.Column[Any]]:
    return [
        sa.Column("test_case_id", sa.String(ID_LENGTH), primary_key=True),
        sa.Column("model", sa.Text(), primary_key=True),
        sa.Column("environment_id", sa.String(ID_LENGTH), primary_key=True),
        sa.Column("firmware_version", sa.Text(), primary_key=True),
    ]


def _run_ref(name: str) -> list[sa.Column[Any]]:
    return [
        sa.Column(f"{name}_run_id", sa.String(ID_LENGTH), nullable=True),
        sa.Column(f"{name}_at", UtcDateTime(), nullable=True),
    ]


_SUMMARY_REFS = ("oldest", "newest", "newest_pass", "oldest_pass", "oldest_fail")


def _summed_results(recent: sa.types.TypeEngine[str]) -> list[sa.Column[Any]]:
    return [
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("inconclusive", sa.Integer(), nullable=False),
        sa.Column("recent", recent, nullable=False),
        *(c for ref in _SUMMARY_REFS for c in _run_ref(ref)),
    ]


def _summed_metric() -> list[sa.Column[Any]]:
    return [
        sa.Column("metric", sa.Text(), primary_key=True),
        sa.Column("condition", sa.String(STATUS_LENGTH), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("total_squares", sa.Float(), nullable=False),
        # the criterion of the newest result that has the metric
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=False),
    ]


result_summaries = sa.Table(
    "result_summaries",
    metadata,
    *_summary_key(),
    *_summed_results(sa.String(16)),
    sa.Index("ix_result_summaries_firmware_version", "firmware_version"),
)

result_metric_summaries = sa.Table(
    "result_metric_summaries",
    metadata,
    *_summary_key(),
    *_summed_metric(),
    sa.Index("ix_result_metric_summaries_firmware_version", "firmware_version"),
)

# The same sums per UTC day of the runs' creation (`from`/`to` of a comparison are creation
# times), so that a window reads whole days of sums and the results of its edge days only.
# `recent` holds the day's newest FLAKY_WINDOW results themselves, newest first, each as
# finish time, run id and device id (fixed width: DAY_RECENT_WIDTH characters) and its
# verdict letter: the newest of a window are among its days' newest.
DAY_ORDER_WIDTH = 26 + 2 * ID_LENGTH  # "%Y-%m-%dT%H:%M:%S.%f", then the padded ids
DAY_RECENT_WIDTH = DAY_ORDER_WIDTH + 1


def _day_key() -> list[sa.Column[Any]]:
    return [
        sa.Column("firmware_version", sa.Text(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        *(c for c in _summary_key() if c.name != "firmware_version"),
    ]


result_day_summaries = sa.Table(
    "result_day_summaries", metadata, *_day_key(), *_summed_results(sa.Text())
)

result_day_metric_summaries = sa.Table(
    "result_day_metric_summaries",
    metadata,
    *_day_key(),
    *_summed_metric(),
    # the result whose criterion this is (its order, as in `recent`), so days combine
    sa.Column("criterion_from", sa.Text(), nullable=False),
)


# Test plans (domain.plans). A plan's definition is one JSON document (its test cases,
# environments, selection, matrix, parameters, priority and triggers); `triggered` says whether
# it has any trigger, so the worker reads only those. `cron_checked_at`: cron slots up to then
# have been looked at.
test_plans = sa.Table(
    "test_plans",
    metadata,
    sa.Column("id", key_text(ID_LENGTH), primary_key=True),
    sa.Column("name", key_text(NAME_LENGTH), nullable=False),
    sa.Column("name_key", sa.Text(), nullable=False),
    sa.Column("definition", json_document(), nullable=False),
    sa.Column("triggered", sa.Boolean(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=True),
    sa.Column("cron_checked_at", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("name", name="uq_test_plans_name"),
    sa.UniqueConstraint("name_key", name="uq_test_plans_name_key"),
)

# A plan run keeps the plan as it was (`plan`, a snapshot) and its cause; `cause_key` is the
# cause's debounce key (NULL for manual starts), unique per plan: a cron slot, or a device's
# new firmware version, starts a plan once, whichever process sees it first. No foreign key
# to test_plans: a deleted plan's plan runs stay readable.
plan_runs = sa.Table(
    "plan_runs",
    metadata,
    sa.Column("id", key_text(ID_LENGTH), primary_key=True),
    sa.Column("plan_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("plan", json_document(), nullable=False),
    sa.Column("cause", json_document(), nullable=False),
    sa.Column("cause_key", sa.String(300), nullable=True),
    sa.Column("runs", json_document(), nullable=False),
    sa.Column("skipped", json_document(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("verdict", sa.String(STATUS_LENGTH), nullable=True),
    sa.UniqueConstraint("plan_id", "cause_key", name="uq_plan_runs_plan_id_cause_key"),
    sa.Index("ix_plan_runs_plan_id_created_at", "plan_id", "created_at"),
    sa.Index("ix_plan_runs_created_at", "created_at"),
    sa.Index("ix_plan_runs_finished_at", "finished_at"),
)

# Firmware versions devices reported, written with the report that brought them (an outbox
# for the new-firmware trigger); `done_at` once the worker has taken one up.
firmware_sightings = sa.Table(
    "firmware_sightings",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("device_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("firmware_version", sa.Text(), nullable=False),
    sa.Column("seen_at", UtcDateTime(), nullable=False),
    sa.Column("done_at", UtcDateTime(), nullable=True),
    sa.Index("ix_firmware_sightings_done_at_seen_at", "done_at", "seen_at"),
)

# health-check designations (migration 0018); no foreign keys: a designation naming a test
# case or environment deleted since is reported when the worker tries it
health_checks = sa.Table(
    "health_checks",
    metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("test_case_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("environment_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("model", sa.Text(), nullable=False),
    sa.Column("labels", json_document(), nullable=False),
    sa.Column("every_hours", sa.Float(), nullable=True),
    sa.Column("every_runs", sa.Integer(), nullable=True),
    sa.Column("after_service", sa.Boolean(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=True),
    sa.Column("version", sa.Integer(), nullable=False),
)

RUNNER_ID_LENGTH = 200

# the runner registry (domain.runners): one row per runner id heard from (migration 0016)
runners = sa.Table(
    "runners",
    metadata,
    sa.Column("id", key_text(RUNNER_ID_LENGTH), primary_key=True),
    sa.Column("host", sa.Text(), nullable=False),
    sa.Column("version", sa.Text(), nullable=False),
    sa.Column("executors", json_document(), nullable=False),
    sa.Column("first_seen_at", UtcDateTime(), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.Column("runs_done", sa.Integer(), nullable=False),
    sa.Column("failures", sa.Integer(), nullable=False),
    sa.Column("drained", sa.Boolean(), nullable=False),
    sa.Column("drained_by", sa.Text(), nullable=False),
    sa.Column("drained_at", UtcDateTime(), nullable=True),
    sa.Column("drain_reason", sa.Text(), nullable=False),
)


# -- a run's logs and artifacts (domain/run_logs.py, domain/artifacts.py) ---------------------

# one row per line, numbered per run by devicelab (seq from 1); the key is the read order
run_log_lines = sa.Table(
    "run_log_lines",
    metadata,
    sa.Column(
        "run_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("test_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("device_id", sa.String(ID_LENGTH), nullable=True),
    sa.Column("test_case_id", sa.String(ID_LENGTH), nullable=True),
    sa.Column("message", sa.Text(), nullable=False),
)

# per run: the last sequence number, the bytes stored, whether the log was cut, when its
# lines were purged (migration 0020); its row is locked while a batch is numbered. The
# partial index holds the logs not purged: after the first purge, the recent runs only
run_log_totals = sa.Table(
    "run_log_totals",
    metadata,
    sa.Column(
        "run_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("test_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("lines", sa.Integer(), nullable=False),
    sa.Column("bytes", sa.BigInteger(), nullable=False),
    sa.Column("truncated", sa.Boolean(), nullable=False),
    sa.Column("purged_at", UtcDateTime(), nullable=True),
    sa.Index(
        "ix_run_log_totals_not_purged",
        "run_id",
        postgresql_where=sa.text("purged_at IS NULL"),
        sqlite_where=sa.text("purged_at IS NULL"),
    ),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column(
        "run_id",
        key_text(ID_LENGTH),
        sa.ForeignKey("test_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("content_type", sa.Text(), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(ID_LENGTH), nullable=True),
    sa.Column("test_case_id", sa.String(ID_LENGTH), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("run_id", "name", name="uq_run_artifacts_run_id_name"),
    sa.Index("ix_run_artifacts_created_at", "created_at"),
)

# the bytes of artifacts when they are kept in the database (several API replicas, one
# PostgreSQL): chunks of at most ARTIFACT_CHUNK_BYTES by artifact key, in order. No foreign
# key to run_artifacts: the bytes are written before the record (adapters/persistence/
# artifact_chunks.py)
artifact_chunks = sa.Table(
    "artifact_chunks",
    metadata,
    sa.Column("artifact_key", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary(), nullable=False),
)
