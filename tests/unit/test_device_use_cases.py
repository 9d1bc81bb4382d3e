"""Device use cases on the in-memory adapters: register, edit, delete, status override,
heartbeats, the silence monitor and the status history."""

from __future__ import annotations

import pytest

from application.errors import AlreadyExists, NotFound
from application.use_cases.devices import SetDeviceStatusRequest
from domain.devices import DeviceStatus
from domain.errors import DeviceUnavailable, InvalidTransition, InvalidValue
from domain.test_runs import RunStatus


def set_status(lab, device_id: str, status: str, reason: str = "", actor: str = "bob", **kw: bool):
    return lab.set_device_status(SetDeviceStatusRequest(device_id, status, reason, actor, **kw))


# -- register / update / delete ------------------------------------------------------------


def test_a_registered_device_is_stored_available(lab) -> None:
    device = lab.add_device(
        "meter-01", model="M1", serial="S-1", firmware_version="1.0", labels={"site": "lab"}
    )
    stored = lab.get_device(device.id)
    assert stored.name == "meter-01"
    assert (stored.model, stored.serial, stored.firmware_version) == ("M1", "S-1", "1.0")
    assert stored.labels == {"site": "lab"}
    assert stored.status is DeviceStatus.AVAILABLE
    assert stored.created_at == lab.clock.now()
    assert lab.device_history(device.id) == []


def test_a_device_can_be_registered_offline(lab) -> None:
    device = lab.add_device("meter-01", offline=True, actor="alice")
    assert lab.get_device(device.id).status is DeviceStatus.OFFLINE
    (entry,) = lab.device_history(device.id)
    assert (entry.from_status, entry.to_status, entry.actor) == (
        DeviceStatus.AVAILABLE,
        DeviceStatus.OFFLINE,
        "alice",
    )


@pytest.mark.parametrize("name", ["meter-01", "  meter-01  "])
def test_device_names_are_unique(lab, name: str) -> None:
    lab.add_device("meter-01")
    with pytest.raises(AlreadyExists):
        lab.add_device(name)
    assert len(lab.store.devices) == 1


def test_an_invalid_device_is_not_stored(lab) -> None:
    with pytest.raises(InvalidValue):
        lab.add_device("   ")
    assert lab.store.devices == {}


def test_updating_a_device_changes_its_details(lab) -> None:
    device = lab.add_device("meter-01")
    lab.clock.advance(60)
    lab.update_device(device.id, {"name": "meter-1a", "location": "rack 3"})
    stored = lab.get_device(device.id)
    assert (stored.name, stored.location) == ("meter-1a", "rack 3")
    assert stored.updated_at == lab.clock.now()


def test_a_device_may_keep_its_own_name_but_not_take_anothers(lab) -> None:
    device = lab.add_device("meter-01")
    lab.add_device("meter-02")
    lab.update_device(device.id, {"name": "meter-01", "model": "M1"})
    with pytest.raises(AlreadyExists):
        lab.update_device(device.id, {"name": "meter-02"})
    assert lab.get_device(device.id).name == "meter-01"


def test_a_refused_update_changes_nothing(lab) -> None:
    device = lab.add_device("meter-01")
    with pytest.raises(InvalidValue):
        lab.update_device(device.id, {"model": "M9", "name": ""})
    with pytest.raises(InvalidValue):
        lab.update_device(device.id, {"held_by": "run-1"})
    stored = lab.get_device(device.id)
    assert (stored.name, stored.model, stored.held_by) == ("meter-01", "", None)


def test_deleting_a_device_removes_it_and_its_history(lab) -> None:
    device = lab.add_device("meter-01", offline=True)
    lab.delete_device(device.id)
    with pytest.raises(NotFound):
        lab.get_device(device.id)
    assert device.id not in lab.store.history


def test_a_device_in_test_cannot_be_deleted(lab) -> None:
    device = lab.add_device("meter-01")
    run = lab.start([device], [lab.add_test_case("soak")], lab.add_environment())
    with pytest.raises(InvalidTransition):
        lab.delete_device(device.id)
    assert lab.get_device(device.id).held_by == run.id


@pytest.mark.parametrize(
    "operation",
    [
        lambda lab: lab.get_device("nope"),
        lambda lab: lab.update_device("nope", {"model": "x"}),
        lambda lab: lab.delete_device("nope"),
        lambda lab: set_status(lab, "nope", "offline"),
        lambda lab: lab.record_heartbeat("nope"),
        lambda lab: lab.device_history("nope"),
    ],
)
def test_an_unknown_device_is_not_found(lab, operation) -> None:
    with pytest.raises(NotFound):
        operation(lab)


# -- status override -------------------------------------------------------------------


def test_a_device_can_be_taken_offline_and_brought_back_by_hand(lab) -> None:
    device = lab.add_device("meter-01")
    set_status(lab, device.id, "offline", "  firmware flashing  ")
    assert lab.get_device(device.id).status is DeviceStatus.OFFLINE
    set_status(lab, device.id, "available")
    assert lab.get_device(device.id).status is DeviceStatus.AVAILABLE
    newest, oldest = lab.device_history(device.id)
    assert (oldest.to_status, oldest.reason, oldest.actor) == (
        DeviceStatus.OFFLINE,
        "firmware flashing",
        "bob",
    )
    assert (newest.to_status, newest.reason) == (DeviceStatus.AVAILABLE, "manual override")


@pytest.mark.parametrize("status", ["in_test", "IN_TEST", "broken", "", "silent", "in_service"])
def test_only_available_offline_maintenance_or_retired_are_set_by_hand(lab, status: str) -> None:
    device = lab.add_device("meter-01")
    with pytest.raises(InvalidValue) as raised:
        set_status(lab, device.id, status)
    assert raised.value.field == "status"
    assert lab.get_device(device.id).status is DeviceStatus.AVAILABLE


def test_taking_a_device_in_test_offline_keeps_it_in_the_run_until_released(lab) -> None:
    device = lab.add_device("meter-01")
    run = lab.start([device], [lab.add_test_case("soak")], lab.add_environment())
    assert set_status(lab, device.id, "offline").status is DeviceStatus.IN_TEST
    assert lab.get_device(device.id).held_by == run.id
    lab.record_result(run.id, [])
    assert lab.get_device(device.id).status is DeviceStatus.OFFLINE


def test_maintenance_records_who_why_and_since_and_heartbeats_keep_it(lab) -> None:
    device = lab.add_device("meter-01")
    lab.clock.advance(10)
    since = lab.clock.now()
    set_status(lab, device.id, "maintenance", " recalibrate ", actor="alice")
    for _ in range(2):
        lab.clock.advance(lab.max_silence_s + 1)
        lab.record_heartbeat(device.id)
        lab.mark_silent_offline()
    stored = lab.get_device(device.id)
    assert stored.status is DeviceStatus.MAINTENANCE
    assert (stored.service_note.by, stored.service_note.reason) == ("alice", "recalibrate")
    assert stored.service_note.since == since
    (entry,) = lab.device_history(device.id)
    assert (entry.to_status, entry.actor, entry.reason) == (
        DeviceStatus.MAINTENANCE,
        "alice",
        "recalibrate",
    )


@pytest.mark.parametrize("status", ["maintenance", "retired"])
def test_maintenance_and_retirement_are_refused_without_a_reason(lab, status: str) -> None:
    device = lab.add_device("meter-01")
    with pytest.raises(InvalidValue) as raised:
        set_status(lab, device.id, status, "   ")
    assert raised.value.field == "reason"
    assert lab.get_device(device.id).status is DeviceStatus.AVAILABLE


@pytest.mark.parametrize("status", ["offline", "maintenance", "retired"])
def test_a_device_out_of_service_is_not_booked(lab, status: str) -> None:
    device, free = lab.add_device("meter-01"), lab.add_device("meter-02")
    set_status(lab, device.id, status, "bench work")
    case, environment = lab.add_test_case("soak"), lab.add_environment()
    if status == "retired":  # never again: refused at once, whether it would wait or not
        for when_busy in ("reject", "queue"):
            with pytest.raises(InvalidValue, match="retired"):
                lab.start([free, device], [case], environment, when_busy=when_busy)
        assert lab.get_device(free.id).status is DeviceStatus.AVAILABLE
        return
    with pytest.raises(DeviceUnavailable) as raised:
        lab.start([free, device], [case], environment, when_busy="reject")
    assert "meter-01" in str(raised.value) and status in str(raised.value)
    assert lab.get_device(free.id).status is DeviceStatus.AVAILABLE
    # queued instead, the run waits and books neither device (all or nothing)
    waiting = lab.start([free, device], [case], environment)
    assert waiting.status is RunStatus.WAITING
    assert lab.get_device(free.id).status is DeviceStatus.AVAILABLE
    assert lab.get_device(device.id).status is DeviceStatus(status)


def test_maintenance_on_a_device_in_test_drains_it_after_the_run(lab) -> None:
    device = lab.add_device("meter-01")
    run = lab.start([device], [lab.add_test_case("soak")], lab.add_environment())
    drained = set_status(lab, device.id, "maintenance", "swap probe")
    assert (drained.status, drained.drain_pending) == (DeviceStatus.IN_TEST, True)
    lab.record_result(run.id, [])
    stored = lab.get_device(device.id)
    assert (stored.status, stored.drain_pending) == (DeviceStatus.MAINTENANCE, False)
    assert lab.device_history(device.id)[0].from_status is DeviceStatus.IN_TEST


def test_a_drain_is_cancelled_by_setting_the_device_available(lab) -> None:
    device = lab.add_device("meter-01")
    run = lab.start([device], [lab.add_test_case("soak")], lab.add_environment())
    set_status(lab, device.id, "maintenance", "swap probe")
    assert set_status(lab, device.id, "available", "not now").drain_pending is False
    lab.record_result(run.id, [])
    assert lab.get_device(device.id).status is DeviceStatus.AVAILABLE


def test_a_device_in_test_is_not_retired(lab) -> None:
    device = lab.add_device("meter-01")
    lab.start([device], [lab.add_test_case("soak")], lab.add_environment())
    with pytest.raises(InvalidTransition):
        set_status(lab, device.id, "retired", "display broken")
    assert lab.get_device(device.id).service_note is None


def test_only_an_admin_brings_a_retired_device_back(lab) -> None:
    device = lab.add_device("meter-01")
    set_status(lab, device.id, "retired", "display broken")
    with pytest.raises(InvalidTransition):
        set_status(lab, device.id, "available", "fixed")
    assert lab.get_device(device.id).status is DeviceStatus.RETIRED
    set_status(lab, device.id, "available", "fixed", actor="root", may_unretire=True)
    assert lab.get_device(device.id).status is DeviceStatus.AVAILABLE


# -- heartbeats and the silence monitor ---------------------------------------------------


def test_a_heartbeat_is_stored_with_the_reported_firmware(lab) -> None:
    device = lab.add_device("meter-01", firmware_version="1.0")
    lab.clock.advance(30)
    lab.record_heartbeat(device.id, firmware_version="1.1")
    stored = lab.get_device(device.id)
    assert stored.last_seen_at == lab.clock.now()
    assert stored.firmware_version == "1.1"


def test_a_heartbeat_brings_back_a_device_offline_by_silence(lab) -> None:
    device = lab.add_device("meter-01")
    lab.record_heartbeat(device.id)
    lab.clock.advance(lab.max_silence_s + 1)
    assert lab.mark_silent_offline() == [device.id]
    lab.record_heartbeat(device.id)
    assert lab.get_device(device.id).status is DeviceStatus.AVAILABLE
    assert lab.device_history(device.id)[0].actor == "heartbeat"


@pytest.mark.parametrize("offline_by_hand", ["registered", "set"])
def test_a_heartbeat_does_not_bring_back_a_device_set_offline_by_hand(
    lab, offline_by_hand: str
) -> None:
    device = lab.add_device("meter-01", offline=offline_by_hand == "registered")
    if offline_by_hand == "set":
        lab.record_heartbeat(device.id)
        set_status(lab, device.id, "offline", "cable loose")
    lab.clock.advance(5)
    lab.record_heartbeat(device.id, firmware_version="2.0")
    stored = lab.get_device(device.id)
    assert stored.status is DeviceStatus.OFFLINE
    assert (stored.last_seen_at, stored.firmware_version) == (lab.clock.now(), "2.0")
    assert lab.device_history(device.id)[0].to_status is DeviceStatus.OFFLINE
    set_status(lab, device.id, "available", "fixed")
    assert lab.get_device(device.id).status is DeviceStatus.AVAILABLE


def test_silent_devices_go_offline_and_others_do_not(lab) -> None:
    silent = lab.add_device("silent")
    chatty = lab.add_device("chatty")
    never_seen = lab.add_device("never-seen")
    lab.record_heartbeat(silent.id)
    lab.record_heartbeat(chatty.id)
    lab.clock.advance(lab.max_silence_s)
    assert lab.mark_silent_offline() == []  # exactly the allowed silence is fine
    lab.record_heartbeat(chatty.id)
    lab.clock.advance(1)
    assert lab.mark_silent_offline() == [silent.id]
    assert lab.get_device(silent.id).status is DeviceStatus.OFFLINE
    assert lab.get_device(chatty.id).status is DeviceStatus.AVAILABLE
    assert lab.get_device(never_seen.id).status is DeviceStatus.AVAILABLE
    entry = lab.device_history(silent.id)[0]
    assert entry.actor == "heartbeat monitor"
    assert entry.reason == f"no heartbeat for {lab.max_silence_s} s"


def test_a_device_already_offline_is_not_marked_again(lab) -> None:
    device = lab.add_device("meter-01")
    lab.record_heartbeat(device.id)
    lab.clock.advance(lab.max_silence_s + 1)
    assert lab.mark_silent_offline() == [device.id]
    lab.clock.advance(lab.max_silence_s + 1)
    assert lab.mark_silent_offline() == []
    assert len(lab.device_history(device.id)) == 1


def test_a_silent_device_in_test_stays_in_the_run_and_is_offline_afterwards(lab) -> None:
    device = lab.add_device("meter-01")
    lab.record_heartbeat(device.id)
    run = lab.start([device], [lab.add_test_case("soak")], lab.add_environment())
    lab.clock.advance(lab.max_silence_s + 1)
    assert lab.mark_silent_offline() == [device.id]
    stored = lab.get_device(device.id)
    assert (stored.status, stored.held_by) == (DeviceStatus.IN_TEST, run.id)
    lab.record_failure(run.id, "device lost")
    assert lab.get_device(device.id).status is DeviceStatus.OFFLINE


def test_the_silence_monitor_works_in_batches(lab) -> None:
    for n in range(5):
        lab.record_heartbeat(lab.add_device(f"meter-{n}").id)
    lab.clock.advance(lab.max_silence_s + 1)
    assert len(lab.mark_silent_offline(batch=2)) == 2
    assert len(lab.mark_silent_offline(batch=2)) == 2
    assert len(lab.mark_silent_offline(batch=2)) == 1
    assert lab.mark_silent_offline(batch=2) == []


# -- history -------------------------------------------------------------------------------


def test_history_is_newest_first_and_names_the_run(lab) -> None:
    device = lab.add_device("meter-01")
    case, environment = lab.add_test_case("soak"), lab.add_environment()
    lab.clock.advance(1)
    run = lab.start([device], [case], environment, started_by="alice")
    lab.clock.advance(1)
    lab.record_result(run.id, [])
    lab.clock.advance(1)
    set_status(lab, device.id, "offline", "maintenance")

    history = lab.device_history(device.id)
    assert [(c.from_status, c.to_status) for c in history] == [
        (DeviceStatus.AVAILABLE, DeviceStatus.OFFLINE),
        (DeviceStatus.IN_TEST, DeviceStatus.AVAILABLE),
        (DeviceStatus.AVAILABLE, DeviceStatus.IN_TEST),
    ]
    assert [c.at for c in history] == sorted((c.at for c in history), reverse=True)
    assert [c.actor for c in history] == ["bob", "runner", "alice"]
    assert [c.run_id for c in history] == [None, run.id, run.id]
    assert history[1].reason == "run completed"


def test_history_can_be_limited(lab) -> None:
    device = lab.add_device("meter-01")
    for _ in range(3):
        set_status(lab, device.id, "offline")
        set_status(lab, device.id, "available")
    assert len(lab.device_history(device.id)) == 6
    latest_two = lab.device_history(device.id, limit=2)
    assert [c.to_status for c in latest_two] == [DeviceStatus.AVAILABLE, DeviceStatus.OFFLINE]


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_the_history_limit_is_bounded(lab, limit: int) -> None:
    device = lab.add_device("meter-01")
    with pytest.raises(InvalidValue):
        lab.device_history(device.id, limit=limit)
