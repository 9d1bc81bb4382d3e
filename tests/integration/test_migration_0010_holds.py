"""Migration 0010 on a database with rows in it: devices and runs from before holds keep their
meaning (no hold note, same status), and the new code can hold such a device, list it as held,
and let it go again; downgrading lets go of what holds had."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import DeviceFilter
from domain.devices import DeviceStatus
from domain.holds import HeldDevice, Hold
from tests.integration.conftest import at_revision

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@pytest.fixture
def url_at_0009(empty_database: str) -> str:
    return at_revision(empty_database, "0009")


def _device(device_id: str, name: str, held_by: str | None, status: str) -> dict:
    return {
        "id": device_id,
        "name": name,
        "name_key": name,
        "model": "EM-340",
        "serial": "",
        "firmware_version": "1.0",
        "location": "",
        "held_by": held_by,
        "service_state": "in_service",
        "status": status,
        "created_at": T0,
        "updated_at": T0,
        "version": 1,
    }


def _fill(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    try:
        with engine.begin() as connection:
            connection.execute(
                t["devices"].insert(),
                [
                    _device("d1", "meter-01", "r1", "in_test"),
                    _device("d2", "meter-02", None, "available"),
                ],
            )
    finally:
        engine.dispose()


def test_devices_from_before_holds_read_as_they_were_and_can_be_held(url_at_0009: str) -> None:
    _fill(url_at_0009)
    upgrade_schema(url_at_0009, "0010")
    engine = make_engine(url_at_0009)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, held_by, hold_holder, hold_until FROM devices ORDER BY id")
            ).all()
            assert [tuple(r) for r in rows] == [("d1", "r1", None, None), ("d2", None, None, None)]
    finally:
        engine.dispose()
    # the repositories read the latest schema: what 0010 left must read right there
    upgrade_schema(url_at_0009)
    engine = make_engine(url_at_0009)
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            in_test, free = uow.devices.get_many_for_update(["d1", "d2"])
            assert (in_test.status, in_test.held_by, in_test.hold) == (
                DeviceStatus.IN_TEST,
                "r1",
                None,
            )
            assert (free.status, free.hold) == (DeviceStatus.AVAILABLE, None)
            assert uow.holds.list_waiting() == []
            hold = Hold.place(
                id="h1",
                holder="alice@lab",
                reason="by hand",
                duration_s=600,
                at=T0,
                max_hold_s=3600,
                queue_timeout_s=60,
                device_ids=["d2"],
            )
            hold.assign([HeldDevice("d2", "meter-02", "EM-340")], T0)
            free.hold_for(hold.note, T0, "alice@lab")
            uow.holds.add(hold)
            uow.devices.update(free)
            uow.commit()
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            held = uow.devices.list(DeviceFilter(status=DeviceStatus.HELD), 10, None)
            assert [(d.id, d.hold.holder, d.hold.until) for d in held] == [
                ("d2", "alice@lab", T0 + timedelta(seconds=600))
            ]
            assert uow.holds.get("h1").device_ids == ("d2",)
    finally:
        engine.dispose()

    downgrade_schema(url_at_0009, "0009")
    engine = make_engine(url_at_0009)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, held_by, status FROM devices ORDER BY id")
            ).all()
            assert [tuple(r) for r in rows] == [("d1", "r1", "in_test"), ("d2", None, "available")]
    finally:
        engine.dispose()
