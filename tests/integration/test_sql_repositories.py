"""The SQL repositories and unit of work, on SQLite and PostgreSQL: every entity survives the
round trip, transactions commit or roll back as a whole, and conflicts surface as the errors
the use cases know."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from application.errors import AlreadyExists, ConcurrentUpdate
from application.ports import DeviceFilter, OutboxMessage
from domain.devices import Device, DeviceStatus, ServiceNote, ServiceState
from domain.environments import Environment, EnvironmentSnapshot
from domain.scheduling import Signature
from domain.test_cases import Condition, Criterion, TestCase
from domain.test_runs import (
    DeviceSnapshot,
    Observation,
    ResultReport,
    RunStatus,
    TestRun,
    Verdict,
)

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))


def _device(name: str = "meter-1", **details: Any) -> Device:
    return Device(id=details.pop("id", f"dev-{name}"), name=name, **details)


def _case(name: str = "voltage", **details: Any) -> TestCase:
    return TestCase(
        id=details.pop("id", f"tc-{name}"),
        name=name,
        criteria=details.pop("criteria", [Criterion("voltage", Condition.LE, 240, "V")]),
        created_at=T0,
        updated_at=T0,
        **details,
    )


def _run(run_id: str, case: TestCase, devices: list[Device], at: datetime = T0) -> TestRun:
    return TestRun.create(
        id=run_id,
        test_cases=[case.snapshot()],
        environment=EnvironmentSnapshot("env-1", "chamber", "hot", {"temp": "40"}),
        devices=[
            DeviceSnapshot(d.id, d.name, d.model, d.serial, d.firmware_version, dict(d.labels))
            for d in devices
        ],
        started_by="alice",
        at=at,
        queue_allowance_s=600,
        parameters={"repeat": 3},
    )


def _add(new_uow: Any, *entities: Any) -> None:
    with new_uow() as uow:
        for entity in entities:
            repository = {
                Device: uow.devices,
                TestCase: uow.test_cases,
                Environment: uow.environments,
                TestRun: uow.test_runs,
            }[type(entity)]
            repository.add(entity)
        uow.commit()


# -- devices ----------------------------------------------------------------------------------


def test_a_device_round_trips_with_labels_history_and_utc_times(new_uow: Any) -> None:
    local = datetime(2026, 3, 1, 10, 0, 0, 500, tzinfo=CEST)
    device = _device(
        "meter-1",
        model="EM-3",
        serial="SN-001",
        firmware_version="1.2.3",
        location="bench 4",
        labels={"site": "berlin", "phase": "3"},
        last_seen_at=local,
        created_at=local,
        updated_at=local,
    )
    device.go_offline(local, "alice", "maintenance")
    with new_uow() as uow:
        uow.devices.add(device)
        assert device.new_history == []  # persisted, so cleared
        uow.commit()

    with new_uow() as uow:
        loaded = uow.devices.get(device.id)
        history = uow.devices.history(device.id, 10)
    assert loaded is not None and loaded is not device
    assert (loaded.name, loaded.model, loaded.serial, loaded.location) == (
        "meter-1",
        "EM-3",
        "SN-001",
        "bench 4",
    )
    assert loaded.firmware_version == "1.2.3"
    assert loaded.labels == {"site": "berlin", "phase": "3"}
    assert loaded.status is DeviceStatus.OFFLINE and loaded.held_by is None
    assert loaded.version == device.version == 1
    for moment in (loaded.last_seen_at, loaded.created_at, loaded.updated_at):
        assert moment == local and moment.tzinfo is UTC
        assert moment.utcoffset() == timedelta(0)
    assert [(c.from_status, c.to_status, c.actor, c.reason) for c in history] == [
        (DeviceStatus.AVAILABLE, DeviceStatus.OFFLINE, "alice", "maintenance")
    ]
    assert history[0].at == local and history[0].at.tzinfo is UTC
    assert loaded.service_state is ServiceState.OFFLINE
    assert loaded.service_note == ServiceNote("alice", "maintenance", local)
    assert loaded.service_note.since.tzinfo is UTC


@pytest.mark.parametrize("held", [False, True])
def test_maintenance_and_a_drain_round_trip(new_uow: Any, held: bool) -> None:
    device = _device("meter-1")
    if held:
        device.reserve("run-1", T0, "alice")
    device.set_service_state(ServiceState.MAINTENANCE, T0, "bob", "new probe")
    with new_uow() as uow:
        uow.devices.add(device)
        uow.commit()
    with new_uow() as uow:
        loaded = uow.devices.get(device.id)
        drained = uow.devices.list(DeviceFilter(status=DeviceStatus.MAINTENANCE), 10, None)
        assert (loaded.drain_pending, loaded.service_note) == (
            held,
            ServiceNote("bob", "new probe", T0),
        )
        assert [d.id for d in drained] == ([] if held else [device.id])
        if held:
            loaded.release("run-1", T0 + timedelta(seconds=1), "runner")
            uow.devices.update(loaded)
            uow.commit()
    with new_uow() as uow:
        loaded = uow.devices.get(device.id)
        assert loaded.status is DeviceStatus.MAINTENANCE
        listed = uow.devices.list(DeviceFilter(status=DeviceStatus.MAINTENANCE), 10, None)
        assert [d.id for d in listed] == [device.id]
        loaded.set_service_state(ServiceState.IN_SERVICE, T0 + timedelta(seconds=2), "bob", "ok")
        uow.devices.update(loaded)
        uow.commit()
    with new_uow() as uow:
        loaded = uow.devices.get(device.id)
        assert (loaded.status, loaded.service_note) == (DeviceStatus.AVAILABLE, None)


def test_naive_datetimes_are_refused(new_uow: Any) -> None:
    with new_uow() as uow, pytest.raises(Exception, match="naive datetime"):
        uow.devices.add(_device(created_at=datetime(2026, 1, 1)))


def test_device_updates_persist_labels_status_and_history_newest_first(new_uow: Any) -> None:
    _add(new_uow, _device(labels={"a": "1", "b": "2"}))
    with new_uow() as uow:
        device = uow.devices.get("dev-meter-1")
        device.reserve("run-1", T0, "alice")
        device.go_offline(T0 + timedelta(seconds=1), "monitor", "silent")
        device.update_details(T0, labels={"b": "3", "c": "4"})
        uow.devices.update(device)
        device.release("run-1", T0 + timedelta(seconds=2), "runner")
        uow.devices.update(device)  # twice in one transaction
        uow.commit()
    with new_uow() as uow:
        loaded = uow.devices.get("dev-meter-1")
        history = uow.devices.history("dev-meter-1", 10)
        newest = uow.devices.history("dev-meter-1", 1)
    assert loaded.labels == {"b": "3", "c": "4"}
    assert loaded.status is DeviceStatus.OFFLINE and loaded.version == 3
    assert [(c.from_status.value, c.to_status.value, c.run_id) for c in history] == [
        ("in_test", "offline", "run-1"),
        ("available", "in_test", "run-1"),
    ]
    assert newest == history[:1]


def test_removing_a_device_removes_its_labels_and_history(lab: Any, new_uow: Any) -> None:
    device = lab.add_device("meter-1", labels={"a": "1"}, offline=True)
    lab.delete_device(device.id)
    with new_uow() as uow:
        assert uow.devices.get(device.id) is None
    assert lab.scalar("SELECT count(*) FROM device_labels") == 0
    assert lab.scalar("SELECT count(*) FROM device_status_changes") == 0


def test_a_stale_device_update_is_refused(new_uow: Any) -> None:
    _add(new_uow, _device())
    with new_uow() as uow:
        stale = uow.devices.get("dev-meter-1")
    with new_uow() as uow:
        device = uow.devices.get("dev-meter-1")
        device.go_offline(T0, "alice", "")
        uow.devices.update(device)
        uow.commit()
    with new_uow() as uow:
        stale.reserve("run-1", T0, "bob")
        with pytest.raises(ConcurrentUpdate, match="changed meanwhile"):
            uow.devices.update(stale)
        assert stale.version == 1  # not bumped by the refused update
    with new_uow() as uow:
        assert uow.devices.get("dev-meter-1").status is DeviceStatus.OFFLINE


def test_get_many_for_update_returns_existing_devices_in_id_order(new_uow: Any) -> None:
    _add(new_uow, _device("c", id="d3"), _device("a", id="d1"), _device("b", id="d2"))
    with new_uow() as uow:
        found = uow.devices.get_many_for_update(["d3", "nope", "d1", "d3"])
        assert [d.id for d in found] == ["d1", "d3"]
        assert uow.devices.get_many_for_update([]) == []


def test_list_relevant_finds_the_named_devices_and_those_of_a_kind_asked_for(
    new_uow: Any,
) -> None:
    _add(
        new_uow,
        _device("m-2", id="d1", model="EM-340", labels={"phase": "L3", "site": "a"}),
        _device("m-1", id="d2", model="EM-340"),
        _device("gone", id="d3", model="EM-340", service_state=ServiceState.RETIRED),
        _device("dongle", id="d4", model="DG-1", labels={"phase": "L3"}),
        _device("other", id="d5", model="X", labels={"site": "a"}),
    )
    l3 = Signature(None, (("phase", "L3"),))
    em340_site_a = Signature("EM-340", (("phase", "L3"), ("site", "a")))
    with new_uow() as uow:
        relevant = uow.devices.list_relevant
        # by model: retired ones too (a pass must tell them from unknown), in name order
        assert [d.name for d in relevant([], [Signature("EM-340", ())])] == ["gone", "m-1", "m-2"]
        assert [d.id for d in relevant([], [l3])] == ["d4", "d1"]
        assert [d.id for d in relevant([], [em340_site_a])] == ["d1"]
        assert [d.id for d in relevant(["d5", "nope"], [em340_site_a])] == ["d1", "d5"]
        found = relevant(["d4"], [])
        assert [(d.id, d.labels) for d in found] == [("d4", {"phase": "L3"})]
        assert relevant([], [Signature("EM-999", ())]) == []
        assert relevant([], []) == []


OFFLINE, SILENT, MAINT = ServiceState.OFFLINE, ServiceState.SILENT, ServiceState.MAINTENANCE


def test_list_silent_finds_devices_quiet_since_before_the_cutoff(new_uow: Any) -> None:
    _add(
        new_uow,
        _device("quiet", id="d1", last_seen_at=T0 - timedelta(minutes=10)),
        _device("recent", id="d2", last_seen_at=T0),
        _device("never", id="d3"),
        _device("off", id="d4", last_seen_at=T0 - timedelta(hours=1), service_state=OFFLINE),
        _device("silent", id="d5", last_seen_at=T0 - timedelta(hours=1), service_state=SILENT),
        _device("fixing", id="d6", last_seen_at=T0 - timedelta(hours=1), service_state=MAINT),
    )
    with new_uow() as uow:
        assert [d.id for d in uow.devices.list_silent(T0 - timedelta(minutes=5), 10)] == ["d1"]


# -- test cases and environments -------------------------------------------------------------


def test_a_test_case_round_trips(new_uow: Any) -> None:
    case = _case(
        "load test",
        description="full load",
        criteria=[Criterion("voltage", Condition.LE, 240, "V"), Criterion("error", "==", 0)],
        duration_s=30,
        timeout_s=90,
        default_parameters={"load": 0.5, "mode": "fast", "steps": [1, 2]},
        tags=["slow", "power"],
    )
    _add(new_uow, case)
    with new_uow() as uow:
        loaded = uow.test_cases.get(case.id)
        by_name = uow.test_cases.get_by_name("load test")
    assert loaded.snapshot() == case.snapshot()
    assert (loaded.created_at, loaded.updated_at) == (T0, T0)
    assert by_name is not None and by_name.id == case.id


def test_concurrent_test_case_edits_cannot_both_become_the_next_version(
    new_uow: Any, engine: Any
) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs one writing transaction at a time: edits cannot interleave")
    _add(new_uow, _case("voltage"))
    with new_uow() as first, new_uow() as second:
        mine = first.test_cases.get("tc-voltage")
        theirs = second.test_cases.get("tc-voltage")
        mine.revise(T0, description="mine")
        first.test_cases.update(mine)
        first.commit()
        theirs.revise(T0, description="theirs")
        with pytest.raises(ConcurrentUpdate):
            second.test_cases.update(theirs)
    with new_uow() as uow:
        loaded = uow.test_cases.get("tc-voltage")
    assert (loaded.description, loaded.version) == ("mine", 2)


def test_an_environment_round_trips_and_updates(new_uow: Any) -> None:
    environment = Environment(
        "env-1", "chamber", "hot and humid", {"temp": "40", "rh": "90"}, T0, T0
    )
    _add(new_uow, environment)
    with new_uow() as uow:
        loaded = uow.environments.get("env-1")
        assert loaded.snapshot() == environment.snapshot()
        loaded.revise(T0 + timedelta(seconds=5), variables={"temp": "-20"})
        uow.environments.update(loaded)
        uow.commit()
    with new_uow() as uow:
        loaded = uow.environments.get_by_name("chamber")
        assert loaded.variables == {"temp": "-20"}
        assert loaded.updated_at == T0 + timedelta(seconds=5)
        uow.environments.remove(loaded)
        uow.commit()
    with new_uow() as uow:
        assert uow.environments.get("env-1") is None


@pytest.mark.parametrize(
    ("kind", "first", "second"),
    [
        ("device", _device("same", id="a"), _device("same", id="b")),
        ("test case", _case("same", id="a"), _case("same", id="b")),
        (
            "environment",
            Environment("a", "same", created_at=T0),
            Environment("b", "same", created_at=T0),
        ),
    ],
)
def test_a_duplicate_name_is_already_exists(
    new_uow: Any, kind: str, first: Any, second: Any
) -> None:
    """The use cases check names first; this is the backstop for a race between two."""
    _add(new_uow, first)
    with pytest.raises(AlreadyExists, match=f"a {kind} with name 'same' already exists"):
        _add(new_uow, second)


def test_a_name_taken_between_check_and_insert_is_already_exists(new_uow: Any, engine: Any) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs one writing transaction at a time: the check cannot go stale")
    with new_uow() as first, new_uow() as second:
        assert first.devices.get_by_name("same") is None
        assert second.devices.get_by_name("same") is None
        first.devices.add(_device("same", id="a"))
        first.commit()
        with pytest.raises(AlreadyExists, match="a device with name 'same' already exists"):
            second.devices.add(_device("same", id="b"))


def test_renaming_onto_a_taken_name_is_already_exists(new_uow: Any) -> None:
    _add(new_uow, _device("one", id="d1"), _device("two", id="d2"))
    with new_uow() as uow:
        device = uow.devices.get("d2")
        device.update_details(T0, name="one")
        with pytest.raises(AlreadyExists):
            uow.devices.update(device)


def test_test_cases_filter_by_text_and_tag(new_uow: Any) -> None:
    _add(
        new_uow,
        _case("Voltage drop", tags=["power", "slow"]),
        _case("voltage peak", tags=["power"]),
        _case("radio range", tags=["rf"]),
        _case("100% load", tags=["power"]),
    )
    with new_uow() as uow:

        def names(**where: Any) -> list[str]:
            from application.ports import NameFilter

            return [c.name for c in uow.test_cases.list(NameFilter(**where), 10, None)]

        assert names(text="VOLTAGE") == ["Voltage drop", "voltage peak"]
        assert names(tag="power") == ["100% load", "Voltage drop", "voltage peak"]
        assert names(tag="slow", text="drop") == ["Voltage drop"]
        assert names(tag="pow") == []
        assert names(text="0%") == ["100% load"]
        assert names(text="%") == ["100% load"]


# -- test runs --------------------------------------------------------------------------------


def test_a_run_round_trips_with_snapshots_results_and_versions(new_uow: Any) -> None:
    case = _case(
        "voltage",
        criteria=[Criterion("voltage", "<=", 240, "V"), Criterion("current", "<", 10, "A")],
        default_parameters={"load": 1},
    )
    devices = [
        _device("m1", firmware_version="1.0", labels={"site": "x"}),
        _device("m2", firmware_version="2.0"),
    ]
    run = _run("run-1", case, devices)
    _add(new_uow, run)

    with new_uow() as uow:
        loaded = uow.test_runs.get("run-1")
        assert loaded.test_cases == run.test_cases
        assert loaded.devices == run.devices
        assert loaded.environment == run.environment
        assert loaded.parameters == {"repeat": 3}
        assert (loaded.created_at, loaded.deadline) == (run.created_at, run.deadline)
        assert loaded.status is RunStatus.QUEUED and loaded.version == 0

        loaded.start(T0 + timedelta(seconds=1))
        loaded.record_progress(
            T0 + timedelta(seconds=2),
            0.5,
            "half way",
            [
                ResultReport(
                    "tc-voltage",
                    "dev-m1",
                    (Observation("voltage", 230.5), Observation("current", 16.5)),
                    started_at=T0,
                    finished_at=T0 + timedelta(seconds=2),
                )
            ],
        )
        uow.test_runs.update(loaded)
        uow.commit()

    with new_uow() as uow:
        running = uow.test_runs.get("run-1", for_update=True)
        assert running.status is RunStatus.RUNNING and running.version == 1
        assert running.progress == 0.5 and running.progress_message == "half way"
        assert running.results == loaded.results
        partial = running.results[("tc-voltage", "dev-m1")]
        assert partial.measurements[1].value == 16.5
        assert partial.measurements[1].passed is False
        assert partial.finished_at == T0 + timedelta(seconds=2)

        running.complete(
            T0 + timedelta(seconds=3),
            [ResultReport("tc-voltage", "dev-m2", (Observation("voltage", 250),), "too high")],
        )
        uow.test_runs.update(running)
        uow.commit()

    with new_uow() as uow:
        done = uow.test_runs.get("run-1")
    assert done.status is RunStatus.COMPLETED and done.verdict is Verdict.FAIL
    assert done.results == running.results  # the partial result was replaced by the final one
    assert done.results[("tc-voltage", "dev-m1")].verdict is Verdict.INCONCLUSIVE
    assert done.results[("tc-voltage", "dev-m2")].message == "too high"
    assert done.finished_at == T0 + timedelta(seconds=3) and done.version == 2


def test_a_stale_run_update_is_refused(new_uow: Any) -> None:
    _add(new_uow, _run("run-1", _case(), [_device()]))
    with new_uow() as uow:
        stale = uow.test_runs.get("run-1")
    with new_uow() as uow:
        run = uow.test_runs.get("run-1", for_update=True)
        run.start(T0)
        uow.test_runs.update(run)
        uow.commit()
    with new_uow() as uow:
        stale.abort(T0, "bob")
        with pytest.raises(ConcurrentUpdate, match="changed meanwhile"):
            uow.test_runs.update(stale)
    with new_uow() as uow:
        assert uow.test_runs.get("run-1").status is RunStatus.RUNNING


def test_list_overdue_lists_unfinished_runs_past_their_deadline(new_uow: Any) -> None:
    case = _case()
    early = _run("early", case, [_device()], at=T0 - timedelta(hours=2))
    earlier = _run("earlier", case, [_device()], at=T0 - timedelta(hours=3))
    finished = _run("finished", case, [_device()], at=T0 - timedelta(hours=3))
    finished.abort(T0, "alice")
    fresh = _run("fresh", case, [_device()], at=T0)
    _add(new_uow, early, earlier, finished, fresh)
    with new_uow() as uow:
        assert uow.test_runs.list_overdue(T0, 10) == ["earlier", "early"]
        assert uow.test_runs.list_overdue(T0, 1) == ["earlier"]


# -- the unit of work -------------------------------------------------------------------------


def test_nothing_is_kept_without_commit(new_uow: Any) -> None:
    with new_uow() as uow:
        uow.devices.add(_device("kept-not"))
    with new_uow() as uow:
        uow.devices.add(_device("rolled-back"))
        uow.rollback()
        uow.devices.add(_device("kept"))
        uow.commit()
    with new_uow() as uow:
        assert uow.devices.get_by_name("kept-not") is None
        assert uow.devices.get_by_name("rolled-back") is None
        assert uow.devices.get_by_name("kept") is not None


def test_an_error_rolls_back_the_whole_transaction(new_uow: Any, lab: Any) -> None:
    with pytest.raises(RuntimeError), new_uow() as uow:
        uow.devices.add(_device("half-done"))
        uow.outbox.add(OutboxMessage("m-1", "test_run.job", "run-1", {"a": 1}, T0))
        raise RuntimeError("boom")
    assert lab.scalar("SELECT count(*) FROM devices") == 0
    assert lab.scalar("SELECT count(*) FROM outbox") == 0


def test_the_outbox_message_commits_and_rolls_back_with_its_run(new_uow: Any, lab: Any) -> None:
    message = OutboxMessage("m-1", "test_run.job", "run-1", {"run_id": "run-1", "n": [1]}, T0)
    with new_uow() as uow:
        uow.test_runs.add(_run("run-1", _case(), [_device()]))
        uow.outbox.add(message)
    assert lab.scalar("SELECT count(*) FROM test_runs") == 0
    assert lab.scalar("SELECT count(*) FROM outbox") == 0

    with new_uow() as uow:
        uow.test_runs.add(_run("run-1", _case(), [_device()]))
        uow.outbox.add(message)
        uow.commit()
    rows = lab.rows("SELECT id, kind, run_id, sent_at, attempts FROM outbox")
    assert [tuple(r) for r in rows] == [("m-1", "test_run.job", "run-1", None, 0)]
    with lab.engine.connect() as connection:
        from adapters.persistence.tables import outbox

        stored = connection.execute(outbox.select()).one()
    assert stored.payload == {"run_id": "run-1", "n": [1]}
    assert stored.created_at == T0 and stored.created_at.tzinfo is UTC
