"""Test plans on the in-memory lab: defining them, starting them by hand, the cron trigger
(missed slots run once), the new-firmware trigger (debounced per plan, device and version;
several devices; the same version seen again; devices outside the selection), the matrix,
and plan runs' progress and overall verdict."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.errors import AlreadyExists, NotFound
from application.use_cases.plans import (
    CreatePlan,
    DeletePlan,
    FireCronTriggers,
    FireFirmwareTriggers,
    GetPlanRun,
    ListPlanRuns,
    PlanInput,
    PlanStarter,
    SettlePlanRuns,
    StartPlan,
    UpdatePlan,
)
from application.use_cases.telemetry import RecordTelemetry, TelemetryReport
from domain.errors import InvalidValue
from domain.plans import (
    VERDICT_SEVERITY,
    CauseKind,
    Trigger,
    TriggerKind,
    plan_verdict,
    run_outcome,
)
from domain.scheduling import DeviceRequest
from domain.test_runs import ResultReport, RunStatus, Verdict
from tests.unit.conftest import Lab


class PlanLab:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        uow, clock, ids = lab.new_uow, lab.clock, lab.ids
        starter = PlanStarter(ids, queue_allowance_s=600)
        self.create = CreatePlan(uow, clock, ids)
        self.update = UpdatePlan(uow, clock)
        self.delete = DeletePlan(uow)
        self.start = StartPlan(uow, clock, starter)
        self.fire_cron = FireCronTriggers(uow, clock, starter)
        self.fire_firmware = FireFirmwareTriggers(uow, clock, starter)
        self.settle = SettlePlanRuns(uow, clock)
        self.get_run = GetPlanRun(uow)
        self.list_runs = ListPlanRuns(uow)
        self.case = lab.add_test_case("voltage")
        self.bench = lab.add_environment("bench")

    def plan(self, name: str = "nightly", **details) -> object:
        details.setdefault("test_case_ids", [self.case.id])
        details.setdefault("environment_ids", [self.bench.id])
        return self.create(PlanInput(name=name, **details))

    def runs_of(self, plan_id: str | None = None):
        return self.list_runs(plan_id, limit=100).items

    def finish(self, run_id: str, voltage: float | None) -> None:
        run = self.lab.get_test_run(run_id)
        observations = () if voltage is None else (("voltage", voltage),)
        from domain.test_runs import Observation

        reports = [
            ResultReport(self.case.id, d.id, tuple(Observation(m, v) for m, v in observations))
            for d in run.devices
        ]
        self.lab.record_result(run_id, reports)


@pytest.fixture
def plans(lab: Lab) -> PlanLab:
    return PlanLab(lab)


def test_a_plan_needs_cases_environments_and_a_selection_that_exist(
    plans: PlanLab, lab: Lab
) -> None:
    meter = lab.add_device("meter 1", model="EM-340")
    with pytest.raises(InvalidValue, match="selection is empty"):
        plans.plan()
    with pytest.raises(InvalidValue, match="unknown test case"):
        plans.plan(device_ids=[meter.id], test_case_ids=["nope"])
    with pytest.raises(InvalidValue, match="unknown environment"):
        plans.plan(device_ids=[meter.id], environment_ids=["nope"])
    with pytest.raises(InvalidValue, match="unknown device"):
        plans.plan(device_ids=["nope"])
    with pytest.raises(InvalidValue) as bad_cron:
        plans.plan(device_ids=[meter.id], triggers=[Trigger(TriggerKind.CRON, "61 * * * *")])
    assert bad_cron.value.field == "triggers"
    assert bad_cron.value.message == "triggers: cron: minute: 61 is outside 0-59"
    plans.plan(device_ids=[meter.id])
    with pytest.raises(AlreadyExists):
        plans.plan("Nightly", device_ids=[meter.id])


def test_plans_are_versioned_and_a_plan_run_keeps_the_plan_it_started_from(
    plans: PlanLab, lab: Lab
) -> None:
    meter = lab.add_device("meter 1")
    plan = plans.plan(device_ids=[meter.id], parameters={"load": 1})
    first = plans.start(plan.id, "alice")
    edited = plans.update(plan.id, {"parameters": {"load": 2}})
    assert edited.version == 2
    assert plans.update(plan.id, {"parameters": {"load": 2}}).version == 2  # no real change
    plans.delete(plan.id)
    kept = plans.get_run(first.id).plan_run
    assert (kept.plan.version, kept.plan.parameters) == (1, {"load": 1})
    assert kept.cause.kind is CauseKind.MANUAL and kept.cause.by == "alice"
    with pytest.raises(NotFound):
        plans.start(plan.id, "alice")


def test_a_manual_start_queues_one_run_per_environment_and_model(plans: PlanLab, lab: Lab) -> None:
    lab.add_device("meter 1", model="EM-340")
    lab.add_device("meter 2", model="EM-540")
    chamber = lab.add_environment("chamber")
    plan = plans.plan(
        environment_ids=[plans.bench.id, chamber.id],
        device_requests=[DeviceRequest(role="meter", count=1)],
        models=["EM-340", "EM-540"],
    )
    plan_run = plans.start(plan.id, "alice")
    cells = {(e.environment_id, e.model) for e in plan_run.runs}
    assert cells == {
        (env, model) for env in (plans.bench.id, chamber.id) for model in ("EM-340", "EM-540")
    }
    for entry in plan_run.runs:
        run = lab.get_test_run(entry.run_id)
        assert [r.model for r in run.device_requests] == [entry.model]
        assert run.started_by == "plan nightly (alice)"


def test_named_devices_take_part_only_in_their_models_cells(plans: PlanLab, lab: Lab) -> None:
    meter = lab.add_device("meter 1", model="EM-340")
    plan = plans.plan(device_ids=[meter.id], models=["EM-340", "EM-540"])
    plan_run = plans.start(plan.id, "alice")
    assert [(e.model, lab.get_test_run(e.run_id).requested_device_ids) for e in plan_run.runs] == [
        ("EM-340", (meter.id,))
    ]
    assert plan_run.skipped == (f"{plans.bench.id} × EM-540",)
    lonely = plans.plan("lonely", device_ids=[meter.id], models=["EM-540"])
    with pytest.raises(InvalidValue, match="selection is empty"):
        plans.start(lonely.id, "alice")


def test_progress_and_overall_verdict_follow_the_runs(plans: PlanLab, lab: Lab) -> None:
    lab.add_device("meter 1")
    lab.add_device("meter 2")
    chamber = lab.add_environment("chamber")
    plan = plans.plan(
        environment_ids=[plans.bench.id, chamber.id], device_requests=[DeviceRequest()]
    )
    plan_run = plans.start(plan.id, "alice")
    first, second = (e.run_id for e in plan_run.runs)
    plans.finish(first, 230.0)
    view = plans.get_run(plan_run.id)
    assert (view.progress.finished, view.progress.total, view.progress.verdict) == (1, 2, None)
    assert plans.settle() == []
    plans.finish(second, None)  # nothing measured: inconclusive
    assert len(plans.settle()) == 1
    settled = plans.get_run(plan_run.id).plan_run
    assert settled.verdict is Verdict.INCONCLUSIVE and settled.finished_at is not None
    assert plans.settle() == []  # settled once


def test_the_verdict_rule() -> None:
    assert plan_verdict([Verdict.PASS, Verdict.PASS]) is Verdict.PASS
    assert plan_verdict([Verdict.PASS, Verdict.INCONCLUSIVE]) is Verdict.INCONCLUSIVE
    assert plan_verdict([Verdict.INCONCLUSIVE, Verdict.FAIL, Verdict.PASS]) is Verdict.FAIL
    assert plan_verdict([]) is Verdict.INCONCLUSIVE
    assert plan_verdict([Verdict.PASS, Verdict.MARGINAL]) is Verdict.MARGINAL
    assert plan_verdict([Verdict.MARGINAL, Verdict.INCONCLUSIVE]) is Verdict.INCONCLUSIVE
    # every verdict has its place in the one ordering
    assert set(VERDICT_SEVERITY) == set(Verdict)
    # a run that failed or was aborted judged nothing
    assert run_outcome(RunStatus.ABORTED, None) is Verdict.INCONCLUSIVE
    assert run_outcome(RunStatus.FAILED, None) is Verdict.INCONCLUSIVE
    assert run_outcome(RunStatus.RUNNING, None) is None


def test_a_cron_slot_starts_the_plan_and_missed_slots_run_once(plans: PlanLab, lab: Lab) -> None:
    meter = lab.add_device("meter 1")
    # T0 is 08:00 UTC; hourly at :30 in Berlin (the same minutes as UTC)
    plan = plans.plan(
        device_ids=[meter.id],
        triggers=[Trigger(TriggerKind.CRON, "30 * * * *", "Europe/Berlin")],
    )
    assert plans.fire_cron() == []
    lab.clock.advance(40 * 60)  # 08:40: the 08:30 slot is due
    assert len(plans.fire_cron()) == 1
    assert plans.fire_cron() == []  # not twice
    (plan_run,) = plans.runs_of(plan.id)
    assert plan_run.plan_run.cause.kind is CauseKind.CRON
    assert plan_run.plan_run.cause.slot == lab.clock.now() - timedelta(minutes=10)
    # the worker is down for five hours: five slots missed, one plan run for the newest
    lab.clock.advance(5 * 3600)
    assert len(plans.fire_cron()) == 1
    newest = plans.runs_of(plan.id)[0].plan_run
    assert newest.cause.slot == lab.clock.now() - timedelta(minutes=10)
    assert len(plans.runs_of(plan.id)) == 2


def test_slots_from_before_the_plan_or_its_trigger_change_never_run(
    plans: PlanLab, lab: Lab
) -> None:
    meter = lab.add_device("meter 1")
    plan = plans.plan(device_ids=[meter.id])
    lab.clock.advance(3 * 3600)
    plans.update(plan.id, {"triggers": [Trigger(TriggerKind.CRON, "0 * * * *")]})
    assert plans.fire_cron() == []  # 09:00, 10:00, 11:00 were before the trigger
    lab.clock.advance(3600)
    assert len(plans.fire_cron()) == 1


def test_a_cron_plan_that_cannot_start_passes_its_slot_over(plans: PlanLab, lab: Lab) -> None:
    meter = lab.add_device("meter 1")
    plans.plan(device_ids=[meter.id], triggers=[Trigger(TriggerKind.CRON, "* * * * *")])
    lab.delete_test_case(plans.case.id)
    lab.clock.advance(120)
    assert plans.fire_cron() == []
    assert plans.runs_of() == []
    assert plans.fire_cron() == []  # looked at, not retried every pass


def firmware_plan(plans: PlanLab, **selection):
    return plans.plan("on firmware", triggers=[Trigger(TriggerKind.NEW_FIRMWARE)], **selection)


def test_new_firmware_starts_the_plan_on_that_device_once(plans: PlanLab, lab: Lab) -> None:
    meter = lab.add_device("meter 1", model="EM-340", firmware_version="1.0.0")
    plan = firmware_plan(plans, device_requests=[DeviceRequest(model="EM-340")])
    lab.record_heartbeat(meter.id, "1.0.0")  # nothing new
    assert plans.fire_firmware() == []
    lab.record_heartbeat(meter.id, "1.1.0")
    lab.record_heartbeat(meter.id, "1.1.0")
    (line,) = plans.fire_firmware()
    assert "1.1.0 on meter 1" in line
    (view,) = plans.runs_of(plan.id)
    cause = view.plan_run.cause
    assert (cause.kind, cause.device_id, cause.firmware_version) == (
        CauseKind.NEW_FIRMWARE,
        meter.id,
        "1.1.0",
    )
    run = lab.get_test_run(view.plan_run.runs[0].run_id)
    assert run.requested_device_ids == (meter.id,)
    assert plans.fire_firmware() == []


def test_a_version_seen_again_later_does_not_run_again(plans: PlanLab, lab: Lab) -> None:
    meter = lab.add_device("meter 1", firmware_version="1.0.0")
    plan = firmware_plan(plans, device_ids=[meter.id])
    for version in ("1.1.0", "1.0.0", "1.1.0"):  # upgrade, roll back, upgrade again
        lab.record_heartbeat(meter.id, version)
        lab.clock.advance(1)
    assert len(plans.fire_firmware()) == 2  # 1.1.0 and 1.0.0, each once
    lab.record_heartbeat(meter.id, "1.0.0")
    lab.record_heartbeat(meter.id, "1.1.0")
    assert plans.fire_firmware() == []
    versions = sorted(v.plan_run.cause.firmware_version for v in plans.runs_of(plan.id))
    assert versions == ["1.0.0", "1.1.0"]


def test_several_devices_each_get_their_plan_run_and_others_none(plans: PlanLab, lab: Lab) -> None:
    a = lab.add_device("meter a", model="EM-340", labels={"site": "lab"})
    b = lab.add_device("meter b", model="EM-340", labels={"site": "lab"})
    other_model = lab.add_device("meter c", model="EM-540", labels={"site": "lab"})
    other_site = lab.add_device("meter d", model="EM-340", labels={"site": "field"})
    plan = firmware_plan(
        plans, device_requests=[DeviceRequest(model="EM-340", labels={"site": "lab"})]
    )
    for device in (a, b, other_model, other_site):
        lab.record_heartbeat(device.id, "2.0.0")
    assert len(plans.fire_firmware()) == 2
    devices = sorted(v.plan_run.cause.device_id for v in plans.runs_of(plan.id))
    assert devices == sorted([a.id, b.id])


def test_telemetry_reporting_new_firmware_is_a_sighting_too(plans: PlanLab, lab: Lab) -> None:
    meter = lab.add_device("meter 1", firmware_version="1.0.0")
    firmware_plan(plans, device_ids=[meter.id])
    telemetry = RecordTelemetry(lab.new_uow, lab.clock, lab.ids, discovery=False)
    telemetry(TelemetryReport("meter 1", "1.2.0"))
    assert len(plans.fire_firmware()) == 1


def test_a_plan_without_the_firmware_trigger_ignores_new_firmware(plans: PlanLab, lab: Lab) -> None:
    meter = lab.add_device("meter 1", firmware_version="1.0.0")
    plans.plan(device_ids=[meter.id], triggers=[Trigger(TriggerKind.CRON, "0 2 * * *")])
    lab.record_heartbeat(meter.id, "1.1.0")
    assert plans.fire_firmware() == []
    assert plans.runs_of() == []


def test_two_workers_taking_up_the_same_sighting_make_one_plan_run(
    plans: PlanLab, lab: Lab
) -> None:
    meter = lab.add_device("meter 1", firmware_version="1.0.0")
    plan = firmware_plan(plans, device_ids=[meter.id])
    lab.record_heartbeat(meter.id, "1.1.0")
    other_worker = FireFirmwareTriggers(lab.new_uow, lab.clock, PlanStarter(lab.ids))
    with lab.new_uow() as uow:  # both read the pending sighting before either is done
        (sighting,) = uow.firmware_sightings.pending(10)
    assert other_worker._start(plan.id, sighting) is not None
    assert plans.fire_firmware() == []
    assert len(plans.runs_of(plan.id)) == 1


def test_a_finished_plan_run_is_announced_to_its_webhooks_once(plans: PlanLab, lab: Lab) -> None:
    from application.use_cases.webhooks import AnnouncePlanRunFinished
    from domain.webhooks import Subscription, WebhookEvent

    with lab.new_uow() as uow:
        for n, events in enumerate(
            [(WebhookEvent.PLAN_RUN_FINISHED,), (WebhookEvent.RUN_FINISHED,)]
        ):
            uow.webhooks.add_subscription(
                Subscription(f"s{n}", "u1", "a@lab", "https://h/x", events, "k", lab.clock.now())
            )
        uow.commit()
    settle = SettlePlanRuns(lab.new_uow, lab.clock, AnnouncePlanRunFinished(lab.ids, lab.clock))
    meter = lab.add_device("meter 1")
    plan_run = plans.start(plans.plan(device_ids=[meter.id]).id, "alice")
    assert settle() == []
    plans.finish(plan_run.runs[0].run_id, 250.0)
    assert len(settle()) == 1
    assert settle() == []
    with lab.new_uow() as uow:
        assert uow.webhooks.list_deliveries("s1", 10) == []  # it wants run.finished only
        (delivery,) = uow.webhooks.list_deliveries("s0", 10)
    assert delivery.payload["event"] == "plan_run.finished"
    data = delivery.payload["data"]["plan_run"]
    assert (data["id"], data["verdict"], data["cause"]) == (plan_run.id, "fail", "manual")
