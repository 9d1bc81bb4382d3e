"""The device state machine: who may hold a device, offline while in test, heartbeats, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.devices import Device, DeviceStatus, ServiceNote, ServiceState, StatusChange
from domain.errors import InvalidTransition, InvalidValue

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def a_device(**details: object) -> Device:
    return Device(id="dev-1", name=str(details.pop("name", "meter-01")), **details)


# -- reserve / release -----------------------------------------------------------------


def test_a_new_device_is_available_and_has_no_history() -> None:
    device = a_device()
    assert device.status is DeviceStatus.AVAILABLE
    assert device.is_available
    assert device.held_by is None
    assert device.new_history == []


def test_reserving_an_available_device_puts_it_in_test_for_that_run() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    assert device.status is DeviceStatus.IN_TEST
    assert device.held_by == "run-1"
    assert not device.is_available
    assert device.updated_at == at(1)


def test_a_device_held_by_one_run_cannot_be_reserved_by_another() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    with pytest.raises(InvalidTransition):
        device.reserve("run-2", at(2), "bob")
    assert device.held_by == "run-1"


def test_reserving_again_for_the_same_run_changes_nothing() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    device.reserve("run-1", at(2), "alice")
    assert device.held_by == "run-1"
    assert len(device.new_history) == 1


def test_an_offline_device_cannot_be_reserved() -> None:
    device = a_device()
    device.go_offline(at(1), "bob", "unplugged")
    with pytest.raises(InvalidTransition):
        device.reserve("run-1", at(2), "alice")
    assert device.held_by is None
    assert device.status is DeviceStatus.OFFLINE


def test_the_holding_run_releases_the_device() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    assert device.release("run-1", at(2), "runner", "run completed") is True
    assert device.held_by is None
    assert device.status is DeviceStatus.AVAILABLE


def test_another_run_may_not_release_the_device() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    with pytest.raises(InvalidTransition):
        device.release("run-2", at(2), "runner")
    assert device.held_by == "run-1"
    assert device.status is DeviceStatus.IN_TEST


def test_releasing_twice_is_a_no_op_that_returns_false() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    device.release("run-1", at(2), "runner")
    history_before = list(device.new_history)
    assert device.release("run-1", at(3), "runner") is False
    assert device.status is DeviceStatus.AVAILABLE
    assert device.new_history == history_before


# -- offline / online while in test ---------------------------------------------------


def test_going_offline_while_in_test_keeps_the_device_held() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    device.fall_silent(at(2), "monitor", "no heartbeat")
    assert device.held_by == "run-1"
    assert device.status is DeviceStatus.IN_TEST
    assert device.offline_pending


def test_a_device_that_went_offline_in_test_is_offline_once_released() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    device.fall_silent(at(2), "monitor", "no heartbeat")
    device.release("run-1", at(3), "runner", "run completed")
    assert device.status is DeviceStatus.OFFLINE
    assert device.new_history[-1] == StatusChange(
        at(3), DeviceStatus.IN_TEST, DeviceStatus.OFFLINE, "runner", "run completed", "run-1"
    )


def test_coming_online_while_in_test_cancels_the_pending_offline() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    device.fall_silent(at(2), "monitor", "no heartbeat")
    device.come_online(at(3), "bob", "cable fixed")
    assert device.status is DeviceStatus.IN_TEST
    device.release("run-1", at(4), "runner")
    assert device.status is DeviceStatus.AVAILABLE


def test_an_offline_device_comes_back_online() -> None:
    device = a_device()
    device.go_offline(at(1), "bob", "maintenance")
    device.come_online(at(2), "bob", "maintenance done")
    assert device.status is DeviceStatus.AVAILABLE


# -- heartbeats ------------------------------------------------------------------------


def test_a_heartbeat_records_when_the_device_was_last_seen() -> None:
    device = a_device()
    device.heartbeat(at(5))
    assert device.last_seen_at == at(5)
    assert device.updated_at == at(5)
    assert device.status is DeviceStatus.AVAILABLE
    assert device.new_history == []


def test_a_heartbeat_brings_an_offline_device_back() -> None:
    device = a_device()
    device.fall_silent(at(1), "monitor", "no heartbeat")
    device.heartbeat(at(2))
    assert device.status is DeviceStatus.AVAILABLE
    assert device.new_history[-1] == StatusChange(
        at(2), DeviceStatus.OFFLINE, DeviceStatus.AVAILABLE, "heartbeat", "device reported in"
    )


def test_a_heartbeat_in_test_cancels_a_pending_offline_without_leaving_the_test() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    device.fall_silent(at(2), "monitor", "no heartbeat")
    device.heartbeat(at(3))
    assert device.status is DeviceStatus.IN_TEST
    assert not device.offline_pending


def test_a_heartbeat_reporting_firmware_updates_it() -> None:
    device = a_device(firmware_version="1.0.0")
    device.heartbeat(at(1), firmware_version="1.1.0")
    assert device.firmware_version == "1.1.0"


@pytest.mark.parametrize("reported", [None, ""])
def test_a_heartbeat_without_firmware_keeps_the_known_one(reported: str | None) -> None:
    device = a_device(firmware_version="1.0.0")
    device.heartbeat(at(1), firmware_version=reported)
    assert device.firmware_version == "1.0.0"


def test_a_device_never_seen_is_not_silent() -> None:
    assert not a_device().is_silent(at(10_000), max_silence_s=60)


@pytest.mark.parametrize(
    ("seconds_since_heartbeat", "silent"), [(59, False), (60, False), (60.5, True), (3600, True)]
)
def test_a_device_is_silent_only_after_the_allowed_silence(
    seconds_since_heartbeat: float, silent: bool
) -> None:
    device = a_device()
    device.heartbeat(at(0))
    assert device.is_silent(at(seconds_since_heartbeat), max_silence_s=60) is silent


# -- history ---------------------------------------------------------------------------


def test_history_records_every_real_status_change_with_actor_reason_and_run() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    device.release("run-1", at(2), "runner", "run completed")
    device.go_offline(at(3), "bob", "maintenance")
    device.come_online(at(4), "bob", "maintenance done")
    assert device.new_history == [
        StatusChange(
            at(1),
            DeviceStatus.AVAILABLE,
            DeviceStatus.IN_TEST,
            "alice",
            "reserved for test run",
            "run-1",
        ),
        StatusChange(
            at(2), DeviceStatus.IN_TEST, DeviceStatus.AVAILABLE, "runner", "run completed", "run-1"
        ),
        StatusChange(at(3), DeviceStatus.AVAILABLE, DeviceStatus.OFFLINE, "bob", "maintenance"),
        StatusChange(
            at(4), DeviceStatus.OFFLINE, DeviceStatus.AVAILABLE, "bob", "maintenance done"
        ),
    ]


def test_release_without_a_reason_says_the_run_released_it() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    device.release("run-1", at(2), "runner")
    assert device.new_history[-1].reason == "released by test run"


def test_no_history_is_written_when_the_status_does_not_change() -> None:
    device = a_device()
    device.come_online(at(1), "bob", "already online")
    device.go_offline(at(2), "bob", "maintenance")
    device.go_offline(at(3), "bob", "still in maintenance")
    device.heartbeat(at(4))  # offline by hand: stays offline
    device.come_online(at(5), "bob", "fixed")
    device.reserve("run-1", at(6), "alice")
    device.fall_silent(at(7), "monitor", "no heartbeat")  # held: still in test
    device.come_online(at(8), "monitor", "back")  # held: still in test
    assert [(c.from_status, c.to_status) for c in device.new_history] == [
        (DeviceStatus.AVAILABLE, DeviceStatus.OFFLINE),
        (DeviceStatus.OFFLINE, DeviceStatus.AVAILABLE),
        (DeviceStatus.AVAILABLE, DeviceStatus.IN_TEST),
    ]


# -- offline by hand, maintenance, retired, drain ----------------------------------------


def set_state(device: Device, state: ServiceState, t: float, **kw: object) -> None:
    reason = str(kw.pop("reason", "bench work"))
    device.set_service_state(state, at(t), str(kw.pop("actor", "bob")), reason, **kw)


def test_a_heartbeat_does_not_bring_back_a_device_set_offline_by_hand() -> None:
    device = a_device()
    device.go_offline(at(1), "bob", "cable loose")
    device.heartbeat(at(2), firmware_version="2.0")
    assert device.status is DeviceStatus.OFFLINE
    assert (device.last_seen_at, device.firmware_version) == (at(2), "2.0")
    assert device.service_note == ServiceNote("bob", "cable loose", at(1))
    with pytest.raises(InvalidTransition):
        device.reserve("run-1", at(3), "alice")


@pytest.mark.parametrize("state", [ServiceState.MAINTENANCE, ServiceState.RETIRED])
def test_maintenance_and_retired_are_sticky_and_never_reserved(state: ServiceState) -> None:
    device = a_device()
    set_state(device, state, 1, reason="recalibrate")
    for t in (2, 3):
        device.heartbeat(at(t))
    assert device.status.value == state.value
    assert device.service_note == ServiceNote("bob", "recalibrate", at(1))
    with pytest.raises(InvalidTransition, match="cannot be reserved"):
        device.reserve("run-1", at(4), "alice")
    assert device.new_history == [
        StatusChange(at(1), DeviceStatus.AVAILABLE, DeviceStatus(state.value), "bob", "recalibrate")
    ]


def test_the_monitor_leaves_a_device_a_person_took_out_of_service_alone() -> None:
    device = a_device()
    set_state(device, ServiceState.MAINTENANCE, 1)
    assert device.fall_silent(at(2), "heartbeat monitor", "no heartbeat") is False
    assert device.service_state is ServiceState.MAINTENANCE
    assert device.service_note == ServiceNote("bob", "bench work", at(1))


@pytest.mark.parametrize("state", [ServiceState.MAINTENANCE, ServiceState.RETIRED])
def test_maintenance_and_retirement_need_a_reason(state: ServiceState) -> None:
    device = a_device()
    with pytest.raises(InvalidValue, match="reason"):
        set_state(device, state, 1, reason="  ")
    assert device.service_state is ServiceState.IN_SERVICE


def test_silence_is_not_set_by_hand() -> None:
    with pytest.raises(InvalidValue):
        set_state(a_device(), ServiceState.SILENT, 1)


def test_maintenance_on_a_device_in_test_drains_it() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    set_state(device, ServiceState.MAINTENANCE, 2, reason="swap the probe")
    assert device.status is DeviceStatus.IN_TEST and device.held_by == "run-1"
    assert device.drain_pending and not device.offline_pending
    device.release("run-1", at(3), "runner", "run completed")
    assert device.status is DeviceStatus.MAINTENANCE and not device.drain_pending
    assert device.new_history[-1] == StatusChange(
        at(3), DeviceStatus.IN_TEST, DeviceStatus.MAINTENANCE, "runner", "run completed", "run-1"
    )
    assert device.service_note == ServiceNote("bob", "swap the probe", at(2))


def test_setting_a_draining_device_available_cancels_the_drain() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    set_state(device, ServiceState.MAINTENANCE, 2)
    set_state(device, ServiceState.IN_SERVICE, 3, reason="not needed")
    assert not device.drain_pending and device.service_note is None
    device.release("run-1", at(4), "runner")
    assert device.status is DeviceStatus.AVAILABLE


def test_a_device_in_test_is_not_retired() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    with pytest.raises(InvalidTransition, match="maintenance"):
        set_state(device, ServiceState.RETIRED, 2)
    assert device.service_state is ServiceState.IN_SERVICE


@pytest.mark.parametrize(
    "state", [ServiceState.IN_SERVICE, ServiceState.OFFLINE, ServiceState.MAINTENANCE]
)
def test_only_who_may_unretire_brings_a_retired_device_back(state: ServiceState) -> None:
    device = a_device()
    set_state(device, ServiceState.RETIRED, 1, reason="broken display")
    with pytest.raises(InvalidTransition, match="retired"):
        set_state(device, state, 2)
    assert device.status is DeviceStatus.RETIRED
    set_state(device, state, 3, actor="admin", may_unretire=True)
    assert device.service_state is state
    assert device.new_history[-1].from_status is DeviceStatus.RETIRED


def test_the_same_state_again_keeps_when_it_began_and_takes_the_new_reason() -> None:
    device = a_device()
    set_state(device, ServiceState.MAINTENANCE, 1, reason="recalibrate")
    set_state(device, ServiceState.MAINTENANCE, 2, actor="carol", reason="and new probe")
    assert device.service_note == ServiceNote("carol", "and new probe", at(1))
    assert len(device.new_history) == 1


def test_setting_offline_by_hand_makes_a_silent_device_sticky() -> None:
    device = a_device()
    device.fall_silent(at(1), "heartbeat monitor", "no heartbeat")
    device.go_offline(at(2), "bob", "unplugged for good")
    device.heartbeat(at(3))
    assert device.service_state is ServiceState.OFFLINE
    assert device.status is DeviceStatus.OFFLINE


# -- deletion and details ---------------------------------------------------------------


def test_a_device_in_test_cannot_be_deleted() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    with pytest.raises(InvalidTransition):
        device.ensure_can_be_deleted()


@pytest.mark.parametrize("offline", [False, True])
def test_a_device_not_in_test_can_be_deleted(offline: bool) -> None:
    device = a_device()
    if offline:
        device.go_offline(at(1), "bob", "broken")
    device.ensure_can_be_deleted()  # raises nothing


def test_an_offline_device_held_by_a_run_cannot_be_deleted() -> None:
    device = a_device()
    device.reserve("run-1", at(1), "alice")
    device.fall_silent(at(2), "monitor", "no heartbeat")
    with pytest.raises(InvalidTransition):
        device.ensure_can_be_deleted()


@pytest.mark.parametrize("name", ["", "   ", None, "x" * 201])
def test_a_device_needs_a_name_of_at_most_200_characters(name: str | None) -> None:
    with pytest.raises(InvalidValue) as raised:
        Device(id="dev-1", name=name)
    assert raised.value.field == "name"


def test_a_device_name_is_trimmed_and_200_characters_are_allowed() -> None:
    assert Device(id="dev-1", name="  meter-01 ").name == "meter-01"
    assert Device(id="dev-1", name="x" * 200).name == "x" * 200


def test_labels_are_kept_as_text_and_need_a_key() -> None:
    assert Device(id="d", name="m", labels={"rack": 3}).labels == {"rack": "3"}
    with pytest.raises(InvalidValue):
        Device(id="d", name="m", labels={" ": "x"})


def test_details_can_be_updated_but_not_the_status_fields() -> None:
    device = a_device()
    device.update_details(at(1), name="meter-02", model="M2", labels={"site": "lab"})
    assert (device.name, device.model, device.labels) == ("meter-02", "M2", {"site": "lab"})
    assert device.updated_at == at(1)
    with pytest.raises(InvalidValue):
        device.update_details(at(2), held_by="run-9")
    assert device.held_by is None


def test_updating_to_an_empty_name_is_refused() -> None:
    device = a_device()
    with pytest.raises(InvalidValue):
        device.update_details(at(1), name="  ")


def test_a_refused_detail_update_leaves_the_device_unchanged() -> None:
    device = a_device()
    with pytest.raises(InvalidValue):
        device.update_details(at(1), model="M9", name="")
    assert (device.name, device.model) == ("meter-01", "")


def test_a_restored_device_is_the_device_that_was_stored():
    """Device.restored (the repositories' loads) skips the checks of the name and labels but
    must give the same device as the constructor, every field set."""
    from dataclasses import fields as dataclass_fields
    from datetime import UTC, datetime

    from domain.devices import Device, ServiceNote, ServiceState
    from domain.health import DeviceHealth, HealthNote

    at = datetime(2026, 12, 1, tzinfo=UTC)
    values = {
        "id": "d1",
        "name": "meter 1",
        "model": "EM-340",
        "serial": "S1",
        "firmware_version": "2.4",
        "location": "bench A",
        "labels": {"phase": "L1"},
        "held_by": None,
        "hold": None,
        "service_state": ServiceState.MAINTENANCE,
        "service_note": ServiceNote("ada", "recalibration", at),
        "health": DeviceHealth.BAD,
        "health_note": HealthNote("r1", "health check run r1 ended fail", "health-check", at),
        "health_checked_at": at,
        "runs_since_health_check": 2,
        "health_check_owed": True,
        "last_seen_at": at,
        "created_at": at,
        "updated_at": at,
        "version": 3,
    }
    made, restored = Device(**values), Device.restored(**values)
    assert {f.name for f in dataclass_fields(Device)} == set(vars(restored))
    assert vars(restored) == vars(made)
    assert restored.status is made.status
