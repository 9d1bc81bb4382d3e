"""Health checks on SQLite and PostgreSQL: the worker's duty finds the devices with a check
under way in SQL (no second one), a failing check's device is bad in its row and is not
booked for a waiting run until cleared, and the check stays out of the SQL statistics,
trends and comparison sums."""

from __future__ import annotations

from datetime import timedelta

from application.ports import ResultScope, RunFilter, TrendScope
from application.use_cases.health_checks import (
    ClearDeviceHealth,
    CreateHealthCheck,
    HealthCheckInput,
    StartDueHealthChecks,
)
from domain.health import DeviceHealth
from domain.test_runs import Observation, ResultReport, RunPurpose, RunStatus


def _report(lab, run_id: str, voltage: float) -> None:
    run = lab.get_test_run(run_id)
    lab.record_result(
        run.id,
        [
            ResultReport(c.id, d.id, (Observation("voltage", voltage),))
            for c in run.test_cases
            for d in run.devices
        ],
    )


def test_a_failing_check_on_sql(lab, new_uow, clock) -> None:
    meter = lab.add_device("meter-01", model="EM-340")
    lab.add_device("gateway-01", model="GW-1")
    probe = lab.add_test_case("self test")
    case = lab.add_test_case("voltage")
    env = lab.add_environment()
    CreateHealthCheck(new_uow, clock, lab.ids)(
        HealthCheckInput("meters", probe.id, env.id, model="EM-340", every_hours=24.0)
    )
    start_due = StartDueHealthChecks(new_uow, clock, lab.ids)
    busy = lab.start([meter], [case], env)
    (check_id,) = start_due()
    assert lab.get_test_run(check_id).status is RunStatus.WAITING  # the device is in test
    with new_uow() as uow:
        assert uow.health_checks.checking_device_ids() == {meter.id}
    assert start_due() == []
    waiting = lab.start([meter], [case], env)
    _report(lab, busy.id, 230)
    assert lab.get_device(meter.id).held_by == check_id  # ahead of the waiting run
    with new_uow() as uow:
        assert uow.health_checks.checking_device_ids() == {meter.id}  # booked now
    _report(lab, check_id, 250)
    device = lab.get_device(meter.id)
    assert device.health is DeviceHealth.BAD
    assert device.health_note.run_id == check_id
    assert lab.get_device(meter.id).held_by is None
    assert lab.get_test_run(waiting.id).status is RunStatus.WAITING

    with new_uow() as uow:
        assert uow.health_checks.checking_device_ids() == set()
        stats = uow.statistics.lab_statistics(clock.now() - timedelta(days=1), 5)
        assert [v for _, v, _ in stats.verdicts_by_day] == ["pass"]  # the busy run only
        assert [c[0] for c in stats.most_failing_test_cases] == []
        assert uow.trends.results(TrendScope(probe.id, 10)) == []
        assert uow.results.summaries(ResultScope(test_case_id=probe.id)) == []
        assert uow.results.summaries(ResultScope(run_id=check_id)) == []
    checks = lab.list_test_runs(RunFilter(purpose=RunPurpose.HEALTH_CHECK)).items
    assert [r.id for r in checks] == [check_id]

    ClearDeviceHealth(new_uow, clock, lab.ids)(meter.id, "eve", "cable reseated")
    assert lab.get_device(meter.id).health is DeviceHealth.UNKNOWN
    assert lab.get_device(meter.id).held_by == waiting.id
