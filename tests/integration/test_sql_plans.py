"""Test plans on SQLite and PostgreSQL: plans and plan runs read back as written, the unique
cause key keeps a trigger to one plan run across processes, and the triggers work on SQL as
on the in-memory twin."""

from __future__ import annotations

import functools
from datetime import timedelta

import pytest

from adapters.identifiers import SequentialIds
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.errors import AlreadyExists
from application.use_cases.plans import FireFirmwareTriggers, PlanStarter
from domain.plans import Cause, PlanRun, Trigger, TriggerKind
from domain.scheduling import DeviceRequest
from tests.unit.test_plans import PlanLab


@pytest.fixture
def plans(lab) -> PlanLab:
    return PlanLab(lab)


def test_a_plan_and_its_plan_runs_read_back_as_written(plans: PlanLab, lab) -> None:
    meter = lab.add_device("meter 1", model="EM-340")
    lab.add_device("meter 2", model="EM-340", labels={"site": "a"})
    lab.add_device("meter 3", model="EM-540", labels={"site": "a"})
    plan = plans.plan(
        device_ids=[meter.id],
        device_requests=[DeviceRequest(role="ref", model="EM-540", labels={"site": "a"})],
        models=["EM-340", "EM-540"],
        parameters={"load": [1, 2]},
        priority="high",
        triggers=[
            Trigger(TriggerKind.CRON, "0 2 * * mon-fri", "Europe/Berlin"),
            Trigger(TriggerKind.NEW_FIRMWARE),
        ],
    )
    with lab.new_uow() as uow:
        stored = uow.plans.get(plan.id)
        assert stored.snapshot() == plan.snapshot()
        assert stored.cron_checked_at == plan.cron_checked_at
        assert [p.id for p in uow.plans.list_triggered()] == [plan.id]
        assert [p.id for p in uow.plans.list("nigh", 10, None)] == [plan.id]
    started = plans.start(plan.id, "alice")
    view = plans.get_run(started.id)
    assert view.plan_run.plan == plan.snapshot()
    assert view.plan_run.runs == started.runs
    assert view.plan_run.cause == Cause.manual("alice")
    assert view.progress.total == len(started.runs) == 2


def test_plan_runs_page_newest_first(plans: PlanLab, lab) -> None:
    meter = lab.add_device("meter 1")
    plan = plans.plan(device_ids=[meter.id])
    made = []
    for _ in range(3):
        made.append(plans.start(plan.id, "alice").id)
        lab.clock.advance(1)
    first = plans.list_runs(plan.id, limit=2)
    assert [v.plan_run.id for v in first.items] == made[::-1][:2]
    rest = plans.list_runs(plan.id, limit=2, cursor=first.next_cursor)
    assert [v.plan_run.id for v in rest.items] == made[:1]


def test_the_cause_key_is_unique_per_plan(plans: PlanLab, lab) -> None:
    meter = lab.add_device("meter 1")
    plan = plans.plan(device_ids=[meter.id])
    cause = Cause.new_firmware(meter.id, "1.1.0")
    with lab.new_uow() as uow:
        uow.plan_runs.add(PlanRun("pr-1", plan.snapshot(), cause, (), lab.clock.now()))
        with pytest.raises(AlreadyExists):
            uow.plan_runs.add(PlanRun("pr-2", plan.snapshot(), cause, (), lab.clock.now()))
        # the transaction goes on after the clash: a manual start needs no key
        uow.plan_runs.add(PlanRun("pr-3", plan.snapshot(), Cause.manual("a"), (), lab.clock.now()))
        uow.commit()
    assert sorted(v.plan_run.id for v in plans.runs_of(plan.id)) == ["pr-1", "pr-3"]


def test_new_firmware_seen_by_two_workers_makes_one_plan_run(
    plans: PlanLab, lab, database_url: str
) -> None:
    meter = lab.add_device("meter 1", firmware_version="1.0.0")
    plan = plans.plan(
        "on firmware", device_ids=[meter.id], triggers=[Trigger(TriggerKind.NEW_FIRMWARE)]
    )
    lab.record_heartbeat(meter.id, "1.1.0")
    # a second worker process: its own engine and ids
    engine = make_engine(database_url)
    try:
        other_uow = functools.partial(SqlAlchemyUnitOfWork, make_session_factory(engine))
        other = FireFirmwareTriggers(other_uow, lab.clock, PlanStarter(SequentialIds("w2")))
        with lab.new_uow() as uow:
            (sighting,) = uow.firmware_sightings.pending(10)
        assert other._start(plan.id, sighting) is not None
    finally:
        engine.dispose()
    assert plans.fire_firmware() == []  # the first worker finds the plan run made
    with lab.new_uow() as uow:
        assert uow.firmware_sightings.pending(10) == []
    (view,) = plans.runs_of(plan.id)
    assert view.plan_run.cause.firmware_version == "1.1.0"
    lab.record_heartbeat(meter.id, "1.0.0")
    lab.record_heartbeat(meter.id, "1.1.0")  # seen again later: not again
    assert len(plans.fire_firmware()) == 1  # only 1.0.0 is new to the plan


def test_a_cron_slot_runs_once_and_missed_slots_once(plans: PlanLab, lab) -> None:
    meter = lab.add_device("meter 1")
    plans.plan(device_ids=[meter.id], triggers=[Trigger(TriggerKind.CRON, "*/10 * * * *")])
    lab.clock.advance(timedelta(hours=3).total_seconds())
    assert len(plans.fire_cron()) == 1
    assert plans.fire_cron() == []
    assert len(plans.runs_of()) == 1
