"""Holds on SQLite and PostgreSQL: the repository keeps every field of a hold and its devices,
checks versions, lists and filters as the in-memory twin does, and a held device's note
(holder, until, reason) survives a round trip; the use cases book, extend, release and
expire holds through the same queue as runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.errors import ConcurrentUpdate
from application.ports import DeviceFilter, HoldFilter
from application.use_cases.holds import (
    Actor,
    ExpireHolds,
    ExtendHold,
    ListHolds,
    PlaceHold,
    PlaceHoldRequest,
    ReleaseHold,
)
from application.use_cases.scheduling import GetQueue
from domain.devices import DeviceStatus
from domain.holds import HeldDevice, Hold, HoldStatus
from domain.scheduling import DeviceRequest, Priority
from domain.test_runs import RunStatus
from tests.integration.conftest import T0


def _hold(**changes) -> Hold:
    hold = Hold.place(
        id="h1",
        holder="alice@lab",
        reason="re-flash by hand",
        duration_s=600,
        at=T0,
        max_hold_s=3600,
        queue_timeout_s=900,
        device_ids=["d1"],
        device_requests=[DeviceRequest(role="gw", model="GW-1", labels={"type": "dongle"})],
        priority=Priority.HIGH,
    )
    for name, value in changes.items():
        setattr(hold, name, value)
    return hold


def test_a_hold_round_trips_with_every_field(new_uow) -> None:
    hold = _hold()
    with new_uow() as uow:
        uow.holds.add(hold)
        uow.commit()
    with new_uow() as uow:
        stored = uow.holds.get("h1")
        assert stored is not None
        assert (stored.holder, stored.reason, stored.duration_s) == (
            "alice@lab",
            "re-flash by hand",
            600,
        )
        assert stored.priority is Priority.HIGH and stored.status is HoldStatus.WAITING
        assert stored.requested_device_ids == ("d1",)
        assert stored.device_requests == hold.device_requests
        assert stored.created_at == T0
        assert stored.queue_timeout_at == T0 + timedelta(seconds=900)
        assert [h.id for h in uow.holds.list_waiting()] == ["h1"]
        stored.assign(
            [HeldDevice("d1", "meter-01", "EM-340"), HeldDevice("d2", "gw", "GW-1", "gw")], T0
        )
        uow.holds.update(stored)
        uow.commit()
    with new_uow() as uow:
        active = uow.holds.get("h1", for_update=True)
        assert active.status is HoldStatus.ACTIVE
        assert [(d.id, d.name, d.model, d.role) for d in active.devices] == [
            ("d1", "meter-01", "EM-340", None),
            ("d2", "gw", "GW-1", "gw"),
        ]
        assert active.expires_at == T0 + timedelta(seconds=600)
        assert uow.holds.list_waiting() == []
        assert uow.holds.list_expired(T0 + timedelta(seconds=599), 10) == []
        assert uow.holds.list_expired(T0 + timedelta(seconds=600), 10) == ["h1"]
        active.end(T0 + timedelta(seconds=10), "alice@lab")
        uow.holds.update(active)
        uow.commit()
    with new_uow() as uow:
        ended = uow.holds.get("h1")
        assert (ended.status, ended.end_reason, ended.ended_by) == (
            HoldStatus.ENDED,
            "released",
            "alice@lab",
        )
        assert ended.ended_at == T0 + timedelta(seconds=10)
        assert ended.device_ids == ("d1", "d2")  # what it had stays on record


def test_a_stale_hold_is_not_written(new_uow) -> None:
    with new_uow() as uow:
        uow.holds.add(_hold())
        uow.commit()
    with new_uow(read_only=True) as uow:
        stale = uow.holds.get("h1")
    with new_uow() as uow:
        fresh = uow.holds.get("h1")
        fresh.end(T0, "alice@lab")
        uow.holds.update(fresh)
        uow.commit()
    stale.end(T0, "admin@lab")
    with new_uow() as uow:
        with pytest.raises(ConcurrentUpdate):
            uow.holds.update(stale)
        assert uow.holds.get("h1").ended_by == "alice@lab"


def test_the_changes_of_a_hold_are_in_the_change_feed(new_uow) -> None:
    with new_uow() as uow:
        uow.holds.add(_hold())
        uow.commit()
    with new_uow() as uow:
        kinds = [(c.kind, c.entity_id) for c in uow.changes.since(0, 10)]
    assert ("hold", "h1") in kinds


@pytest.fixture
def holds(lab):
    class Holds:
        place = PlaceHold(lab.new_uow, lab.clock, lab.ids, max_hold_s=3600)
        release = ReleaseHold(lab.new_uow, lab.clock, lab.ids)
        extend = ExtendHold(lab.new_uow, lab.clock, max_hold_s=3600)
        expire = ExpireHolds(lab.new_uow, lab.clock, lab.ids)
        list = ListHolds(lab.new_uow)
        queue = GetQueue(lab.new_uow, lab.clock)

    return Holds


def test_holds_and_runs_share_the_queue_on_sql(lab, holds) -> None:
    m1 = lab.add_device("meter-01", model="EM-340")
    case = lab.add_test_case("voltage", duration_s=60, timeout_s=120)
    env = lab.add_environment()
    hold = holds.place(PlaceHoldRequest("alice@lab", "by hand", 600, device_ids=[m1.id]))
    assert hold.status is HoldStatus.ACTIVE
    device = lab.get_device(m1.id)
    assert device.status is DeviceStatus.HELD
    assert (device.hold.hold_id, device.hold.holder, device.hold.until) == (
        hold.id,
        "alice@lab",
        hold.expires_at,
    )
    assert lab.scalar("SELECT status FROM devices WHERE id = :i", i=m1.id) == "held"
    held = lab.list_devices(DeviceFilter(status=DeviceStatus.HELD))
    assert [d.id for d in held.items] == [m1.id]

    run = lab.start([m1], [case], env)
    waiting = holds.place(PlaceHoldRequest("bob@lab", "later", 600, device_ids=[m1.id]))
    assert [(e.kind.value, e.id) for e in holds.queue()] == [("run", run.id), ("hold", waiting.id)]

    extended = holds.extend(hold.id, 600, Actor("alice@lab"))
    assert lab.get_device(m1.id).hold.until == extended.expires_at

    lab.clock.advance(1200)
    assert holds.expire() == [hold.id]
    assert lab.get_test_run(run.id).status is RunStatus.QUEUED
    assert lab.get_device(m1.id).status is DeviceStatus.IN_TEST
    assert lab.get_device(m1.id).hold is None

    lab.cancel_test_run(run.id, by="alice@lab")
    assert lab.get_device(m1.id).held_by == waiting.id
    on_m1 = holds.list(HoldFilter(device_id=m1.id)).items
    assert [h.id for h in on_m1] == [waiting.id, hold.id]
    assert [h.id for h in holds.list(HoldFilter(holder="bob@lab")).items] == [waiting.id]
    assert [h.id for h in holds.list(HoldFilter(status=HoldStatus.ENDED)).items] == [hold.id]
    page = holds.list(HoldFilter(), limit=1)
    rest = holds.list(HoldFilter(), limit=1, cursor=page.next_cursor)
    assert [h.id for h in page.items + rest.items] == [waiting.id, hold.id]

    ended = holds.release(waiting.id, Actor("admin@lab", may_end_any=True))
    assert ended.end_reason == "released"
    assert lab.get_device(m1.id).status is DeviceStatus.AVAILABLE
