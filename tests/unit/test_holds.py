"""Holds on the in-memory adapters: a hold takes free devices at once (no job), waits in the
same queue as runs otherwise, and ends released, cancelled, expired, timed out in the queue or
unsatisfiable; its end frees the devices for whatever waits next; extend limits; only the
holder or an admin ends or extends it; a drained device goes to maintenance after the hold."""

from __future__ import annotations

import pytest

from application.auth.errors import Forbidden
from application.errors import NotFound
from application.job_contract import JOB_KIND
from application.ports import HoldFilter
from application.use_cases.devices import SetDeviceStatusRequest
from application.use_cases.holds import Actor
from domain.devices import DeviceStatus
from domain.errors import DeviceUnavailable, InvalidTransition, InvalidValue
from domain.holds import HoldStatus
from domain.scheduling import DeviceRequest, ItemKind
from domain.test_runs import Observation, ResultReport, RunStatus


@pytest.fixture
def bench(lab):
    class Bench:
        m1 = lab.add_device("meter-01", model="EM-340")
        m2 = lab.add_device("meter-02", model="EM-340")
        case = lab.add_test_case("voltage", duration_s=60, timeout_s=120)
        env = lab.add_environment("chamber")

    return Bench


def finish(lab, run) -> None:
    run = lab.get_test_run(run.id)
    lab.record_result(
        run.id,
        [
            ResultReport(c.id, d.id, (Observation("voltage", 230),))
            for c in run.test_cases
            for d in run.devices
        ],
    )


def test_a_hold_on_free_devices_is_active_at_once_and_the_devices_show_held(lab, bench) -> None:
    hold = lab.hold([bench.m1], duration_s=600)

    assert hold.status is HoldStatus.ACTIVE
    assert hold.device_ids == (bench.m1.id,)
    assert hold.started_at == lab.clock.now()
    assert (hold.expires_at - hold.started_at).total_seconds() == 600
    device = lab.get_device(bench.m1.id)
    assert device.status is DeviceStatus.HELD
    assert device.held_by == hold.id
    assert (device.hold.holder, device.hold.until, device.hold.reason) == (
        "alice",
        hold.expires_at,
        "re-flash by hand",
    )
    assert lab.outbox(JOB_KIND) == []  # a hold sends nothing to the runners


def test_a_hold_by_request_gets_a_matching_device_with_its_role(lab, bench) -> None:
    hold = lab.hold(device_requests=[DeviceRequest(role="meter", model="EM-340", count=2)])
    assert hold.status is HoldStatus.ACTIVE
    assert {d.id for d in hold.devices} == {bench.m1.id, bench.m2.id}
    assert {d.role for d in hold.devices} == {"meter"}


def test_a_hold_waits_behind_a_run_and_gets_the_device_when_the_run_ends(lab, bench) -> None:
    run = lab.start([bench.m1], [bench.case], bench.env)
    hold = lab.hold([bench.m1])
    assert hold.status is HoldStatus.WAITING
    assert hold.devices == () and hold.expires_at is None
    queue = lab.get_queue()
    assert [(e.kind, e.id, e.position) for e in queue] == [(ItemKind.HOLD, hold.id, 1)]

    finish(lab, run)

    active = lab.get_hold(hold.id)
    assert active.status is HoldStatus.ACTIVE
    assert lab.get_device(bench.m1.id).status is DeviceStatus.HELD
    assert lab.get_queue() == []


def test_a_run_waits_behind_an_active_hold_and_starts_when_it_is_released(lab, bench) -> None:
    hold = lab.hold([bench.m1])
    run = lab.start([bench.m1], [bench.case], bench.env)
    assert run.status is RunStatus.WAITING

    ended = lab.release(hold)

    assert (ended.status, ended.end_reason, ended.ended_by) == (
        HoldStatus.ENDED,
        "released",
        "alice",
    )
    assert lab.get_test_run(run.id).status is RunStatus.QUEUED
    assert lab.get_device(bench.m1.id).held_by == run.id


def test_a_run_waits_behind_an_active_hold_and_starts_when_it_expires(lab, bench) -> None:
    hold = lab.hold([bench.m1], duration_s=600)
    run = lab.start([bench.m1], [bench.case], bench.env)

    lab.clock.advance(599)
    assert lab.expire_holds() == []
    lab.clock.advance(1)
    assert lab.expire_holds() == [hold.id]

    ended = lab.get_hold(hold.id)
    assert (ended.status, ended.end_reason, ended.ended_by) == (
        HoldStatus.ENDED,
        "expired",
        "reaper",
    )
    assert lab.get_test_run(run.id).status is RunStatus.QUEUED
    assert lab.expire_holds() == []  # nothing twice


def test_no_overtaking_between_holds_and_runs(lab, bench) -> None:
    run = lab.start([bench.m1], [bench.case], bench.env)
    hold = lab.hold([bench.m1, bench.m2])  # waits for meter-01, keeps meter-02 free for it
    later = lab.start([bench.m2], [bench.case], bench.env)
    assert later.status is RunStatus.WAITING, "a later run took a device the hold waits for"
    later_hold = lab.hold([bench.m2])
    assert later_hold.status is HoldStatus.WAITING

    positions = [(e.id, e.position) for e in lab.get_queue()]
    assert positions == [(hold.id, 1), (later.id, 2), (later_hold.id, 3)]

    finish(lab, run)
    assert lab.get_hold(hold.id).status is HoldStatus.ACTIVE
    assert lab.get_test_run(later.id).status is RunStatus.WAITING

    lab.release(hold)
    assert lab.get_test_run(later.id).status is RunStatus.QUEUED
    assert lab.get_hold(later_hold.id).status is HoldStatus.WAITING


def test_a_higher_priority_run_goes_before_a_waiting_hold(lab, bench) -> None:
    first = lab.hold([bench.m1])
    hold = lab.hold([bench.m1])
    urgent = lab.start([bench.m1], [bench.case], bench.env, priority="high")
    assert [e.id for e in lab.get_queue()] == [urgent.id, hold.id]
    lab.release(first)
    assert lab.get_test_run(urgent.id).status is RunStatus.QUEUED
    assert lab.get_hold(hold.id).status is HoldStatus.WAITING


def test_when_busy_reject_refuses_a_hold_on_a_busy_device_and_keeps_nothing(lab, bench) -> None:
    lab.start([bench.m1], [bench.case], bench.env)
    with pytest.raises(DeviceUnavailable) as refused:
        lab.hold([bench.m1, bench.m2], when_busy="reject")
    assert refused.value.unavailable == {bench.m1.id: "in_test"}
    assert refused.value.names == {bench.m1.id: "meter-01"}
    assert lab.list_holds(HoldFilter()).items == []
    assert lab.get_device(bench.m2.id).held_by is None


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"device_ids": ["nope"]}, "device_ids"),
        ({"device_requests": [DeviceRequest(model="EM-999")]}, "device_requests"),
        ({"device_ids": []}, "device_ids"),
        ({"duration_s": 59}, "duration_s"),
        ({"duration_s": 8 * 3600 + 1}, "duration_s"),
        ({"reason": "  "}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ({"when_busy": "maybe"}, "when_busy"),
        ({"priority": "urgent"}, "priority"),
    ],
)
def test_a_hold_that_can_never_be_is_refused_at_once(lab, bench, request_, field) -> None:
    request_ = {"device_ids": [bench.m1.id], **request_}
    devices = request_.pop("device_ids")
    with pytest.raises(InvalidValue) as refused:
        lab.hold(devices, **request_)
    assert refused.value.field == field
    assert lab.list_holds(HoldFilter()).items == []


def test_a_retired_device_makes_a_hold_impossible(lab, bench) -> None:
    lab.set_device_status(
        SetDeviceStatusRequest(bench.m1.id, "retired", "broken", "bob", may_unretire=True)
    )
    with pytest.raises(InvalidValue, match="retired"):
        lab.hold([bench.m1])


def test_a_waiting_hold_whose_device_is_retired_ends_unsatisfiable(lab, bench) -> None:
    run = lab.start([bench.m1], [bench.case], bench.env)
    hold = lab.hold([bench.m1])
    lab.set_device_status(SetDeviceStatusRequest(bench.m1.id, "maintenance", "worn", "bob"))
    finish(lab, run)  # drained: maintenance, so the hold keeps waiting
    assert lab.get_hold(hold.id).status is HoldStatus.WAITING
    lab.set_device_status(SetDeviceStatusRequest(bench.m1.id, "retired", "gone", "bob"))
    lab.schedule()
    ended = lab.get_hold(hold.id)
    assert ended.status is HoldStatus.ENDED
    assert ended.end_reason.startswith("unsatisfiable: ")
    assert "retired" in ended.end_reason


def test_a_waiting_hold_times_out_in_the_queue(lab, bench) -> None:
    lab.start([bench.m1], [bench.case], bench.env)
    hold = lab.hold([bench.m1], queue_timeout_s=60)
    lab.clock.advance(61)
    lab.schedule()
    ended = lab.get_hold(hold.id)
    assert (ended.status, ended.end_reason) == (HoldStatus.ENDED, "queue timeout")


def test_cancelling_a_waiting_hold_lets_the_next_item_start(lab, bench) -> None:
    run = lab.start([bench.m1], [bench.case], bench.env)
    hold = lab.hold([bench.m1, bench.m2])
    later = lab.start([bench.m2], [bench.case], bench.env)
    assert later.status is RunStatus.WAITING

    ended = lab.release(hold)

    assert (ended.status, ended.end_reason) == (HoldStatus.ENDED, "cancelled")
    assert lab.get_test_run(later.id).status is RunStatus.QUEUED
    assert lab.get_test_run(run.id).status is RunStatus.QUEUED


def test_only_the_holder_or_an_admin_ends_a_hold(lab, bench) -> None:
    hold = lab.hold([bench.m1], holder="alice")
    with pytest.raises(Forbidden):
        lab.release(hold, by="bob")
    assert lab.get_hold(hold.id).status is HoldStatus.ACTIVE
    with pytest.raises(Forbidden):
        lab.extend_hold(hold.id, 600, Actor("bob"))

    ended = lab.release(hold, by="carol", admin=True)
    assert (ended.end_reason, ended.ended_by) == ("released", "carol")


def test_ending_an_ended_hold_is_refused(lab, bench) -> None:
    hold = lab.hold([bench.m1])
    lab.release(hold)
    with pytest.raises(InvalidTransition):
        lab.release(hold)
    with pytest.raises(NotFound):
        lab.release("no-such-hold")


def test_extend_moves_the_expiry_of_the_hold_and_its_devices(lab, bench) -> None:
    hold = lab.hold([bench.m1], duration_s=3600)
    lab.clock.advance(1800)

    extended = lab.extend_hold(hold.id, 1800, Actor("alice"))

    assert (extended.expires_at - hold.expires_at).total_seconds() == 1800
    assert lab.get_device(bench.m1.id).hold.until == extended.expires_at
    lab.clock.advance(3599)
    assert lab.expire_holds() == []  # the extension counts


def test_extend_is_limited_to_the_maximum_from_now_and_to_active_holds(lab, bench) -> None:
    hold = lab.hold([bench.m1], duration_s=3600)
    with pytest.raises(InvalidValue) as too_far:
        lab.extend_hold(hold.id, lab.max_hold_s, Actor("alice"))
    assert too_far.value.field == "by_s"
    with pytest.raises(InvalidValue):
        lab.extend_hold(hold.id, 59, Actor("alice"))
    # exactly up to the maximum from now is allowed
    lab.extend_hold(hold.id, lab.max_hold_s - 3600, Actor("alice"))

    lab.start([bench.m2], [bench.case], bench.env)
    waiting = lab.hold([bench.m2])
    with pytest.raises(InvalidTransition):
        lab.extend_hold(waiting.id, 600, Actor("alice"))
    lab.release(hold)
    with pytest.raises(InvalidTransition):
        lab.extend_hold(hold.id, 600, Actor("alice"))


def test_a_hold_past_its_expiry_is_not_extended_even_before_the_worker_ends_it(lab, bench) -> None:
    hold = lab.hold([bench.m1], duration_s=600)
    lab.clock.advance(900)  # expired; the worker has not been round yet
    with pytest.raises(InvalidTransition, match="expired"):
        lab.extend_hold(hold.id, 600, Actor("alice"))
    assert lab.get_hold(hold.id).expires_at == hold.expires_at


def test_a_device_drained_while_held_goes_to_maintenance_when_the_hold_ends(lab, bench) -> None:
    hold = lab.hold([bench.m1])
    lab.set_device_status(SetDeviceStatusRequest(bench.m1.id, "maintenance", "recalibrate", "bob"))
    device = lab.get_device(bench.m1.id)
    assert device.status is DeviceStatus.HELD and device.drain_pending
    run = lab.start([bench.m1], [bench.case], bench.env)

    lab.release(hold)

    assert lab.get_device(bench.m1.id).status is DeviceStatus.MAINTENANCE
    assert lab.get_test_run(run.id).status is RunStatus.WAITING  # never booked in maintenance


def test_a_held_device_cannot_be_retired_or_deleted(lab, bench) -> None:
    lab.hold([bench.m1])
    with pytest.raises(InvalidTransition, match="held by hold"):
        lab.set_device_status(SetDeviceStatusRequest(bench.m1.id, "retired", "gone", "bob"))
    with pytest.raises(InvalidTransition, match="held by hold"):
        lab.delete_device(bench.m1.id)


def test_device_history_records_the_hold(lab, bench) -> None:
    hold = lab.hold([bench.m1])
    lab.release(hold)
    changes = lab.device_history(bench.m1.id)
    assert [(c.from_status, c.to_status, c.run_id) for c in changes[:2]] == [
        (DeviceStatus.HELD, DeviceStatus.AVAILABLE, hold.id),
        (DeviceStatus.AVAILABLE, DeviceStatus.HELD, hold.id),
    ]


def test_list_holds_filters_by_status_holder_and_device_newest_first(lab, bench) -> None:
    first = lab.hold([bench.m1], holder="alice")
    lab.clock.advance(1)
    second = lab.hold([bench.m2], holder="bob")
    lab.clock.advance(1)
    third = lab.hold([bench.m1], holder="bob")  # waits for meter-01
    everything = lab.list_holds(HoldFilter()).items
    assert [h.id for h in everything] == [third.id, second.id, first.id]
    assert [h.id for h in lab.list_holds(HoldFilter(holder="bob")).items] == [third.id, second.id]
    waiting = lab.list_holds(HoldFilter(status=HoldStatus.WAITING)).items
    assert [h.id for h in waiting] == [third.id]
    on_m1 = lab.list_holds(HoldFilter(device_id=bench.m1.id)).items
    assert [h.id for h in on_m1] == [first.id]
    page = lab.list_holds(HoldFilter(), limit=2)
    rest = lab.list_holds(HoldFilter(), limit=2, cursor=page.next_cursor)
    assert [h.id for h in page.items + rest.items] == [third.id, second.id, first.id]


def test_hold_changes_are_live_events_in_the_hold_shape(lab, bench) -> None:
    from adapters.http.events import event_text
    from application.use_cases.live_updates import ReadChanges

    read = ReadChanges(lab.new_uow, lab.clock)
    cursor = read.cursor()
    hold = lab.hold([bench.m1])
    updates = read(cursor)
    assert [u.hold.id for u in updates if u.change.kind == "hold"] == [hold.id]
    assert not [u for u in updates if u.queue is not None], "it never waited"
    event = event_text(next(u for u in updates if u.change.kind == "hold"))
    assert "\nevent: hold\n" in event
    assert f'"id":"{hold.id}"' in event and '"status":"active"' in event

    behind = lab.hold([bench.m1])  # waits: the queue changes
    [queue] = [u.queue for u in read(cursor) if u.queue is not None]
    assert [(i.kind, i.id, i.position) for i in queue.items] == [("hold", behind.id, 1)]
