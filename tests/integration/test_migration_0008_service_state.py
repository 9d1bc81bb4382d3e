"""Migration 0008 on a database with rows in it: `marked_offline` becomes the service state.
A device the heartbeat monitor took offline is offline by silence (a heartbeat brings it
back); one a person took offline stays offline by hand, also while a run holds it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from domain.devices import DeviceStatus, ServiceNote, ServiceState
from tests.integration.conftest import at_revision

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

# id: (held_by, marked_offline, status, [(actor, reason, to_status)] of its history)
DEVICES = {
    "fine": (None, False, "available", []),
    "busy": ("run-1", False, "in_test", [("alice", "reserved", "in_test")]),
    "quiet": (None, True, "offline", [("heartbeat monitor", "no heartbeat for 300 s", "offline")]),
    "by-hand": (
        None,
        True,
        "offline",
        [
            ("heartbeat monitor", "no heartbeat", "offline"),
            ("heartbeat", "back", "available"),
            ("bob@lab", "cable loose", "offline"),
        ],
    ),
    "held-off": ("run-2", True, "in_test", [("alice", "reserved", "in_test")]),
    "no-history": (None, True, "offline", []),
}


@pytest.fixture
def url_at_0007(empty_database: str) -> str:
    return at_revision(empty_database, "0007")


def _fill(url: str) -> None:
    """Rows as devicelab at revision 0007 wrote them."""
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    try:
        with engine.begin() as connection:
            for n, (device_id, (held_by, offline, status, history)) in enumerate(DEVICES.items()):
                connection.execute(
                    t["devices"]
                    .insert()
                    .values(
                        id=device_id,
                        name=f"meter-{n}",
                        name_key=f"meter-{n}",
                        model="",
                        serial="",
                        firmware_version="",
                        location="",
                        held_by=held_by,
                        marked_offline=offline,
                        status=status,
                        created_at=T0,
                        updated_at=T0 + timedelta(minutes=n),
                        version=1,
                    )
                )
                before = "available"
                for k, (actor, reason, to_status) in enumerate(history):
                    connection.execute(
                        t["device_status_changes"]
                        .insert()
                        .values(
                            device_id=device_id,
                            at=T0 + timedelta(seconds=10 * k + 1),
                            from_status=before,
                            to_status=to_status,
                            actor=actor,
                            reason=reason,
                        )
                    )
                    before = to_status
    finally:
        engine.dispose()


def _load(url: str) -> dict:
    engine = make_engine(url)
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            return {d: uow.devices.get(d) for d in DEVICES}
    finally:
        engine.dispose()


def test_marked_offline_becomes_silent_or_offline_by_hand(url_at_0007: str) -> None:
    _fill(url_at_0007)

    upgrade_schema(url_at_0007)

    devices = _load(url_at_0007)
    states = {d: (device.service_state, device.status) for d, device in devices.items()}
    assert states == {
        "fine": (ServiceState.IN_SERVICE, DeviceStatus.AVAILABLE),
        "busy": (ServiceState.IN_SERVICE, DeviceStatus.IN_TEST),
        "quiet": (ServiceState.SILENT, DeviceStatus.OFFLINE),
        "by-hand": (ServiceState.OFFLINE, DeviceStatus.OFFLINE),
        "held-off": (ServiceState.OFFLINE, DeviceStatus.IN_TEST),
        "no-history": (ServiceState.OFFLINE, DeviceStatus.OFFLINE),
    }
    assert devices["fine"].service_note is None
    assert devices["quiet"].service_note == ServiceNote(
        "heartbeat monitor", "no heartbeat for 300 s", T0 + timedelta(seconds=1)
    )
    assert devices["by-hand"].service_note == ServiceNote(
        "bob@lab", "cable loose", T0 + timedelta(seconds=21)
    )
    assert devices["held-off"].offline_pending
    note = devices["no-history"].service_note
    assert note is not None and note.since == T0 + timedelta(minutes=5)

    # the stored status stays what the derived one says, so lists filter right
    engine = make_engine(url_at_0007)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, status FROM devices")).all()
        assert {row.id: row.status for row in rows} == {
            d: device.status.value for d, device in devices.items()
        }
    finally:
        engine.dispose()

    # only silence ends with a heartbeat
    engine = make_engine(url_at_0007)
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            for device_id in ("quiet", "by-hand"):
                (device,) = uow.devices.get_many_for_update([device_id])
                device.heartbeat(T0 + timedelta(hours=1))
                uow.devices.update(device)
            uow.commit()
    finally:
        engine.dispose()
    after = _load(url_at_0007)
    assert after["quiet"].status is DeviceStatus.AVAILABLE
    assert after["by-hand"].status is DeviceStatus.OFFLINE


def test_0008_downgrades_maintenance_and_retired_to_offline(url_at_0007: str) -> None:
    _fill(url_at_0007)
    upgrade_schema(url_at_0007)  # the repositories write the latest schema; down from there
    engine = make_engine(url_at_0007)
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            (device,) = uow.devices.get_many_for_update(["fine"])
            device.set_service_state(ServiceState.MAINTENANCE, T0 + timedelta(hours=1), "b", "x")
            uow.devices.update(device)
            uow.commit()
    finally:
        engine.dispose()

    downgrade_schema(url_at_0007, "0007")

    engine = make_engine(url_at_0007)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, marked_offline, status FROM devices")
            ).all()
            changes = connection.execute(
                sa.text("SELECT to_status FROM device_status_changes WHERE device_id = 'fine'")
            ).all()
    finally:
        engine.dispose()
    by_id = {row.id: (bool(row.marked_offline), row.status) for row in rows}
    assert by_id["fine"] == (True, "offline")
    assert by_id["busy"] == (False, "in_test")
    assert by_id["quiet"] == (True, "offline")
    assert [c.to_status for c in changes] == ["offline"]
