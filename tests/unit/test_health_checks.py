"""Health checks on the in-memory adapters: designations and their bad input, the worker's
duty that starts due checks (one per device at a time, ahead of normal work on the device,
never ahead of a run that has it), a failing check taking the device out of booking until it
is cleared or a later check passes, the `device.health_bad` webhook, and health-check runs
kept out of statistics, trends and comparisons."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.webhooks.in_memory import StaticResolver
from application.errors import NotFound
from application.ports import ResultScope, RunFilter, TrendScope
from application.use_cases.devices import SetDeviceStatusRequest
from application.use_cases.health_checks import (
    ClearDeviceHealth,
    CreateHealthCheck,
    DeleteHealthCheck,
    HealthCheckInput,
    ListHealthChecks,
    StartDueHealthChecks,
    UpdateHealthCheck,
)
from application.use_cases.webhooks import (
    DispatchWebhookEvents,
    ListDeliveries,
    Subscribe,
    SubscribeRequest,
    WebhookActor,
)
from domain.errors import DeviceUnavailable, InvalidTransition, InvalidValue
from domain.health import DeviceHealth
from domain.test_runs import Observation, ResultReport, RunPurpose, RunStatus, Verdict
from domain.webhooks import TargetPolicy


@pytest.fixture
def health(lab, clock, ids):
    class Health:
        create = CreateHealthCheck(lab.new_uow, clock, ids)
        update = UpdateHealthCheck(lab.new_uow, clock)
        delete = DeleteHealthCheck(lab.new_uow)
        list = ListHealthChecks(lab.new_uow)
        start_due = StartDueHealthChecks(lab.new_uow, clock, ids)
        clear = ClearDeviceHealth(lab.new_uow, clock, ids)

    return Health


@pytest.fixture
def bench(lab):
    class Bench:
        m1 = lab.add_device("meter-01", model="EM-340")
        m2 = lab.add_device("meter-02", model="EM-340")
        other = lab.add_device("gateway-01", model="GW-1")
        probe = lab.add_test_case("self test", duration_s=30, timeout_s=60)
        case = lab.add_test_case("voltage", duration_s=60, timeout_s=120)
        env = lab.add_environment("bench")

    return Bench


def designate(health, bench, **more):
    fields = {"name": "EM-340 self test", "model": "EM-340", "every_hours": 24.0, **more}
    return health.create(
        HealthCheckInput(test_case_id=bench.probe.id, environment_id=bench.env.id, **fields)
    )


def report(lab, run_id, voltage: float | None):
    """Every (case, device) of the run: 230 V passes the criterion voltage <= 240, 250 V fails
    it, no value is inconclusive."""
    run = lab.get_test_run(run_id)
    observations = () if voltage is None else (Observation("voltage", voltage),)
    lab.record_result(
        run.id,
        [ResultReport(c.id, d.id, observations) for c in run.test_cases for d in run.devices],
    )


def checks_of(lab, device_id):
    """The device's health-check runs (a waiting one has no devices yet: it names its own)."""
    runs = lab.list_test_runs(RunFilter(purpose=RunPurpose.HEALTH_CHECK)).items
    return [r for r in runs if device_id in (r.device_ids or r.requested_device_ids)]


# -- designations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"model": "", "labels": {}}, "model"),
        ({"every_hours": None, "every_runs": None, "after_service": False}, "every_hours"),
        ({"every_hours": 0}, "every_hours"),
        ({"every_hours": float("inf")}, "every_hours"),
        ({"every_runs": 0}, "every_runs"),
        ({"every_runs": True}, "every_runs"),
        ({"labels": {"": "x"}}, "labels"),
        ({"name": "  "}, "name"),
    ],
)
def test_a_designation_that_cannot_work_is_refused(health, bench, fields, field):
    with pytest.raises(InvalidValue) as refused:
        designate(health, bench, **fields)
    assert refused.value.field == field
    assert health.list() == []


def test_a_designation_must_name_a_known_test_case_and_environment(health, bench):
    with pytest.raises(InvalidValue, match="unknown test case"):
        health.create(HealthCheckInput("x", "nope", bench.env.id, model="EM-340", every_runs=3))
    with pytest.raises(InvalidValue, match="unknown environment"):
        health.create(HealthCheckInput("x", bench.probe.id, "nope", model="EM-340", every_runs=3))


def test_designations_are_edited_and_removed(health, bench):
    check = designate(health, bench)
    changed = health.update(check.id, {"every_runs": 5, "every_hours": None})
    assert (changed.every_runs, changed.every_hours) == (5, None)
    with pytest.raises(InvalidValue):
        health.update(check.id, {"model": ""})  # nothing would be designated
    assert health.list()[0].model == "EM-340"
    health.delete(check.id)
    assert health.list() == []
    with pytest.raises(NotFound):
        health.delete(check.id)


# -- the worker's duty -----------------------------------------------------------------------


def test_a_due_check_runs_once_on_each_matching_device(lab, health, bench):
    designate(health, bench)
    started = health.start_due()
    assert len(started) == 2
    runs = [lab.get_test_run(i) for i in started]
    assert {r.device_ids for r in runs} == {(bench.m1.id,), (bench.m2.id,)}
    assert all(r.is_health_check and r.status is RunStatus.QUEUED for r in runs)
    assert all(r.started_by == "health-check" for r in runs)
    # no second check while one is under way, and none on the gateway (another model)
    assert health.start_due() == []
    assert checks_of(lab, bench.other.id) == []


def test_a_health_check_waits_for_the_run_that_has_the_device_then_goes_first(lab, health, bench):
    busy = lab.start([bench.m1], [bench.case], bench.env)
    normal = lab.start([bench.m1], [bench.case], bench.env, priority="high")
    assert normal.status is RunStatus.WAITING
    designate(health, bench)
    health.start_due()
    (check,) = checks_of(lab, bench.m1.id)
    # it does not overtake the run that already has the device
    assert lab.get_test_run(check.id).status is RunStatus.WAITING
    assert lab.get_device(bench.m1.id).held_by == busy.id
    report(lab, busy.id, 230)
    # the device frees up: the health check gets it, not the high-priority run waiting longer
    assert lab.get_device(bench.m1.id).held_by == check.id
    assert lab.get_test_run(normal.id).status is RunStatus.WAITING
    report(lab, check.id, 230)
    assert lab.get_device(bench.m1.id).held_by == normal.id
    assert lab.get_device(bench.m1.id).health is DeviceHealth.GOOD


@pytest.mark.parametrize(
    ("voltage", "verdict"), [(250, Verdict.FAIL), (None, Verdict.INCONCLUSIVE)]
)
def test_a_failing_check_takes_the_device_out_of_booking_until_cleared(
    lab, health, bench, voltage, verdict
):
    designate(health, bench, model="GW-1")
    (check_id,) = health.start_due()
    report(lab, check_id, voltage)
    assert lab.get_test_run(check_id).verdict is verdict
    device = lab.get_device(bench.other.id)
    assert device.health is DeviceHealth.BAD
    assert device.health_note.run_id == check_id
    assert device.status.value == "available"  # beside its status, not instead of it
    # a normal run waits; a hold and a run that must start now are refused
    waiting = lab.start([bench.other], [bench.case], bench.env)
    assert waiting.status is RunStatus.WAITING
    with pytest.raises(DeviceUnavailable, match="bad"):
        lab.start([bench.other], [bench.case], bench.env, when_busy="reject")
    with pytest.raises(DeviceUnavailable, match="bad"):
        lab.hold([bench.other], when_busy="reject")
    lab.schedule()
    assert lab.get_device(bench.other.id).held_by is None
    cleared = health.clear(bench.other.id, "eve", "reseated the RS-485 cable")
    assert cleared.health is DeviceHealth.UNKNOWN
    assert cleared.health_note.by == "eve"
    assert lab.get_device(bench.other.id).held_by == waiting.id
    with pytest.raises(InvalidTransition):
        health.clear(bench.other.id, "eve")  # not bad any more


def test_a_bad_device_still_gets_its_checks_and_a_passing_one_brings_it_back(
    lab, health, bench, clock
):
    designate(health, bench, model="GW-1", every_hours=1.0)
    (first,) = health.start_due()
    report(lab, first, 250)
    waiting = lab.start([bench.other], [bench.case], bench.env)
    clock.advance(3601)
    (second,) = health.start_due()
    assert lab.get_device(bench.other.id).held_by == second  # ahead of the waiting run
    report(lab, second, 230)
    assert lab.get_device(bench.other.id).health is DeviceHealth.GOOD
    assert lab.get_device(bench.other.id).held_by == waiting.id


def test_a_cancelled_check_judges_nothing(lab, health, bench):
    designate(health, bench, model="GW-1")
    (check_id,) = health.start_due()
    lab.cancel_test_run(check_id, "eve")
    assert lab.get_device(bench.other.id).health is DeviceHealth.UNKNOWN


def test_checks_come_due_by_hours_by_runs_and_after_service(lab, health, bench, clock):
    designate(health, bench, model="GW-1", every_hours=10.0, every_runs=2, after_service=True)
    (first,) = health.start_due()
    report(lab, first, 230)
    assert health.start_due() == []
    # two other runs on the device
    for _ in range(2):
        run = lab.start([bench.other], [bench.case], bench.env)
        report(lab, run.id, 230)
    (by_runs,) = health.start_due()
    report(lab, by_runs, 230)
    assert health.start_due() == []
    clock.advance(10 * 3600)
    (by_hours,) = health.start_due()
    report(lab, by_hours, 230)
    assert health.start_due() == []
    # maintenance: no check while it lasts, one when the device comes back
    lab.set_device_status(SetDeviceStatusRequest(bench.other.id, "maintenance", "new probe"))
    clock.advance(11 * 3600)
    assert health.start_due() == []
    lab.set_device_status(SetDeviceStatusRequest(bench.other.id, "available"))
    clock.advance(-11 * 3600 + 60)  # not due by hours: only the return makes it due
    assert len(health.start_due()) == 1


def test_a_device_going_bad_is_announced_once(lab, health, bench, clock, ids):
    policy = TargetPolicy.parse(["hooks.example.com"])
    resolver = StaticResolver({"hooks.example.com": ["93.184.216.34"]})
    actor = WebhookActor("u-eng", "eng@lab.example", False)
    dispatch = DispatchWebhookEvents(lab.new_uow, clock, ids)
    dispatch()
    watch = Subscribe(lab.new_uow, clock, ids, policy, resolver)(
        SubscribeRequest("https://hooks.example.com/x", ["device.health_bad"]), actor
    )
    designate(health, bench, model="GW-1")
    clock.advance(1)
    (check_id,) = health.start_due()
    report(lab, check_id, 250)
    assert dispatch() == 1
    lab.record_heartbeat(bench.other.id)  # the device changes again while it stays bad
    assert dispatch() == 0
    (delivery,) = ListDeliveries(lab.new_uow)(watch.id, actor)
    assert delivery.event.value == "device.health_bad"
    assert delivery.payload["data"]["device"]["health_run_id"] == check_id


def test_health_checks_stay_out_of_statistics_trends_and_comparisons(lab, health, bench, clock):
    designate(health, bench, model="GW-1")
    (check_id,) = health.start_due()
    report(lab, check_id, 250)
    with lab.new_uow(read_only=True) as uow:
        stats = uow.statistics.lab_statistics(clock.now() - timedelta(days=1), 10)
        assert stats.verdicts_by_day == []
        assert stats.most_failing_test_cases == []
        assert uow.results.summaries(ResultScope()) == []
        assert uow.trends.results(TrendScope(bench.probe.id, 10)) == []
    assert [r.id for r in lab.list_test_runs(RunFilter(purpose=RunPurpose.NORMAL)).items] == []
    assert [r.id for r in lab.list_test_runs(RunFilter()).items] == [check_id]


def test_the_device_itself_refuses_a_booking_of_a_bad_device_for_anything_but_its_check():
    """The aggregate's own guard, behind the scheduler's: a pass that read the device before
    it went bad must not book it."""
    from datetime import UTC, datetime

    from domain.devices import Device
    from domain.holds import HoldNote

    at = datetime(2026, 12, 1, tzinfo=UTC)
    device = Device(id="d1", name="meter")
    assert device.record_health_check("r1", "fail", at) is True
    assert device.record_health_check("r2", "fail", at) is False  # already bad: no new event
    with pytest.raises(InvalidTransition, match="bad"):
        device.reserve("run-1", at, "scheduler")
    with pytest.raises(InvalidTransition, match="bad"):
        device.hold_for(HoldNote("h1", "eve", at, "x"), at, "eve")
    device.reserve("check-1", at, "scheduler", health_check=True)
    assert device.held_by == "check-1"
