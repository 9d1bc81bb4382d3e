"""RecordTelemetry on the in-memory adapters: discovery, heartbeats with firmware, the write
throttle, and how telemetry drives the offline rule."""

from __future__ import annotations

import pytest

from adapters.persistence.in_memory import InMemoryUnitOfWork
from application.errors import AlreadyExists
from application.use_cases.devices import RegisterDeviceRequest
from application.use_cases.telemetry import (
    RecordTelemetry,
    TelemetryOutcome,
    TelemetryReport,
)
from domain.devices import DeviceStatus
from domain.errors import InvalidValue

INTERVAL_S = 30


def recorder(lab, discovery: bool = True, min_interval_s: float = INTERVAL_S) -> RecordTelemetry:
    return RecordTelemetry(lab.new_uow, lab.clock, lab.ids, discovery, min_interval_s)


def devices_named(lab, name: str):
    return [d for d in lab.store.devices.values() if d.name == name]


# -- discovery ---------------------------------------------------------------------------------


def test_an_unknown_device_registers_itself_when_discovery_is_on(lab) -> None:
    record = recorder(lab)
    recorded = record(
        TelemetryReport(
            "meter-77",
            firmware_version="2.4.1",
            model="EM-340",
            serial="SN-77",
            location="rack 3",
            labels={"site": "lab-a"},
        )
    )
    assert recorded.outcome is TelemetryOutcome.REGISTERED
    stored = lab.get_device(recorded.device.id)
    assert stored.name == "meter-77"
    assert (stored.model, stored.serial, stored.location) == ("EM-340", "SN-77", "rack 3")
    assert stored.firmware_version == "2.4.1"
    assert stored.labels == {"site": "lab-a", "discovered": "telemetry"}
    assert stored.status is DeviceStatus.AVAILABLE
    assert stored.last_seen_at == stored.created_at == lab.clock.now()


def test_an_unknown_device_is_ignored_when_discovery_is_off(lab) -> None:
    recorded = recorder(lab, discovery=False)(TelemetryReport("meter-77", "2.4.1"))
    assert recorded.outcome is TelemetryOutcome.UNKNOWN
    assert recorded.device is None
    assert lab.store.devices == {}


def test_a_known_device_is_found_by_its_name_without_surrounding_blanks(lab) -> None:
    device = lab.add_device("meter-01")
    recorded = recorder(lab, discovery=False)(TelemetryReport("  meter-01 "))
    assert recorded.outcome is TelemetryOutcome.HEARTBEAT
    assert recorded.device.id == device.id
    assert len(lab.store.devices) == 1


def test_a_report_with_an_invalid_name_registers_nothing(lab) -> None:
    with pytest.raises(InvalidValue):
        recorder(lab)(TelemetryReport("   "))
    assert lab.store.devices == {}


def test_a_device_registered_by_another_listener_meanwhile_gets_the_heartbeat(lab) -> None:
    """Two listeners see the same new device at once: the database's unique name turns the
    slower one's registration into AlreadyExists, which becomes a heartbeat on the winner."""

    class RacingUnitOfWork(InMemoryUnitOfWork):
        raced = False

        def __enter__(self):
            uow = super().__enter__()
            real_add = uow.devices.add

            def add(device):
                if not RacingUnitOfWork.raced:
                    RacingUnitOfWork.raced = True
                    lab.register_device(RegisterDeviceRequest(name=device.name, model="winner"))
                    raise AlreadyExists("device", "name", device.name)
                real_add(device)

            uow.devices.add = add
            return uow

    record = RecordTelemetry(
        lambda: RacingUnitOfWork(lab.store), lab.clock, lab.ids, discovery=True
    )
    recorded = record(TelemetryReport("meter-77", "3.0"))
    assert recorded.outcome is TelemetryOutcome.HEARTBEAT
    (stored,) = devices_named(lab, "meter-77")
    assert (stored.model, stored.firmware_version) == ("winner", "3.0")
    assert stored.last_seen_at == lab.clock.now()


# -- heartbeats --------------------------------------------------------------------------------


def test_a_report_records_last_seen_and_firmware(lab) -> None:
    device = lab.add_device("meter-01", firmware_version="1.0")
    lab.clock.advance(60)
    recorded = recorder(lab)(TelemetryReport("meter-01", firmware_version="1.1"))
    assert recorded.outcome is TelemetryOutcome.HEARTBEAT
    stored = lab.get_device(device.id)
    assert stored.last_seen_at == lab.clock.now()
    assert stored.firmware_version == "1.1"
    assert lab.device_history(device.id) == []


@pytest.mark.parametrize("firmware", [None, "", "   "])
def test_a_report_without_firmware_keeps_the_known_version(lab, firmware) -> None:
    device = lab.add_device("meter-01", firmware_version="1.0")
    recorder(lab)(TelemetryReport("meter-01", firmware_version=firmware))
    assert lab.get_device(device.id).firmware_version == "1.0"


def test_registration_details_do_not_overwrite_a_known_device(lab) -> None:
    device = lab.add_device("meter-01", model="M1", location="rack 1", labels={"a": "b"})
    recorder(lab)(TelemetryReport("meter-01", model="X", location="elsewhere", labels={"c": "d"}))
    stored = lab.get_device(device.id)
    assert (stored.model, stored.location, stored.labels) == ("M1", "rack 1", {"a": "b"})


# -- throttle ---------------------------------------------------------------------------------


def test_frequent_reports_are_written_once_per_interval(lab) -> None:
    device = lab.add_device("meter-01", firmware_version="1.0")
    record = recorder(lab)
    first = record(TelemetryReport("meter-01"))
    seen = lab.get_device(device.id).last_seen_at
    lab.clock.advance(INTERVAL_S - 1)
    assert record(TelemetryReport("meter-01", "1.0")).outcome is TelemetryOutcome.THROTTLED
    assert lab.get_device(device.id).last_seen_at == seen
    lab.clock.advance(1)
    assert record(TelemetryReport("meter-01")).outcome is TelemetryOutcome.HEARTBEAT
    assert lab.get_device(device.id).last_seen_at == lab.clock.now() != seen
    assert first.outcome is TelemetryOutcome.HEARTBEAT


def test_a_new_firmware_is_written_at_once(lab) -> None:
    device = lab.add_device("meter-01", firmware_version="1.0")
    record = recorder(lab)
    record(TelemetryReport("meter-01"))
    lab.clock.advance(1)
    assert record(TelemetryReport("meter-01", "1.1")).outcome is TelemetryOutcome.HEARTBEAT
    assert lab.get_device(device.id).firmware_version == "1.1"


def test_without_a_throttle_every_report_is_written(lab) -> None:
    lab.add_device("meter-01")
    record = recorder(lab, min_interval_s=0)
    outcomes = [record(TelemetryReport("meter-01")).outcome for _ in range(3)]
    assert outcomes == [TelemetryOutcome.HEARTBEAT] * 3


# -- the offline rule ------------------------------------------------------------------------


def test_a_discovered_device_goes_offline_when_silent_and_back_when_it_reports(lab) -> None:
    record = recorder(lab)
    device = record(TelemetryReport("meter-77")).device
    lab.clock.advance(lab.max_silence_s - 1)
    assert lab.mark_silent_offline() == []
    lab.clock.advance(2)
    assert lab.mark_silent_offline() == [device.id]
    assert lab.get_device(device.id).status is DeviceStatus.OFFLINE

    # the throttle never hides a report from a device that is offline
    lab.clock.advance(1)
    assert record(TelemetryReport("meter-77")).outcome is TelemetryOutcome.HEARTBEAT
    assert lab.get_device(device.id).status is DeviceStatus.AVAILABLE
    history = lab.device_history(device.id)
    assert [(h.to_status, h.actor) for h in history] == [
        (DeviceStatus.AVAILABLE, "heartbeat"),
        (DeviceStatus.OFFLINE, "heartbeat monitor"),
    ]


@pytest.mark.parametrize("status", ["offline", "maintenance", "retired"])
def test_telemetry_of_a_device_a_person_took_out_of_service_keeps_it_out(lab, status) -> None:
    from application.use_cases.devices import SetDeviceStatusRequest

    device = lab.add_device("meter-01")
    record = recorder(lab)
    record(TelemetryReport("meter-01"))
    lab.set_device_status(SetDeviceStatusRequest(device.id, status, "bench", "alice"))
    for firmware in ("2.0", "2.1"):
        lab.clock.advance(lab.max_silence_s + 1)
        outcome = record(TelemetryReport("meter-01", firmware_version=firmware)).outcome
        assert outcome is TelemetryOutcome.HEARTBEAT
    stored = lab.get_device(device.id)
    assert stored.status is DeviceStatus(status)
    assert (stored.last_seen_at, stored.firmware_version) == (lab.clock.now(), "2.1")
    assert (stored.service_note.by, stored.service_note.reason) == ("alice", "bench")
    assert [h.to_status for h in lab.device_history(device.id)] == [DeviceStatus(status)]
