"""Use cases of health checks: the designations (admins), the worker's duty that starts the
checks that are due, and an engineer clearing a bad device."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from application.errors import NotFound
from application.ports import Clock, IdGenerator, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from application.use_cases.scheduling import (
    ScheduleWaitingRuns,
    after_devices_freed,
    all_devices,
    schedule_in,
)
from domain.devices import Device
from domain.errors import InvalidValue
from domain.health_checks import HEALTH_CHECK_ACTOR, DueCheck, HealthCheck, due_checks
from domain.test_cases import with_parameters
from domain.test_runs import RunPurpose, TestRun

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthCheckInput:
    name: str
    test_case_id: str
    environment_id: str
    model: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    every_hours: float | None = None
    every_runs: int | None = None
    after_service: bool = True


def _load(uow: UnitOfWork, check_id: str) -> HealthCheck:
    check = uow.health_checks.get(check_id)
    if check is None:
        raise NotFound("health check", check_id)
    return check


def _refuse_unknown_references(uow: UnitOfWork, check: HealthCheck) -> None:
    if uow.test_cases.get(check.test_case_id) is None:
        raise InvalidValue("test_case_id", f"unknown test case: {check.test_case_id}")
    if uow.environments.get(check.environment_id) is None:
        raise InvalidValue("environment_id", f"unknown environment: {check.environment_id}")


class CreateHealthCheck:
    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self, data: HealthCheckInput) -> HealthCheck:
        now = self.clock.now()
        check = HealthCheck(id=self.ids.new_id(), **vars(data), created_at=now, updated_at=now)
        with self.uow() as uow:
            _refuse_unknown_references(uow, check)
            uow.health_checks.add(check)
            uow.commit()
        return check


class UpdateHealthCheck:
    def __init__(self, uow: UowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(self, check_id: str, changes: dict[str, object]) -> HealthCheck:
        with self.uow() as uow:
            check = _load(uow, check_id)
            check.update(self.clock.now(), **changes)
            _refuse_unknown_references(uow, check)
            uow.health_checks.update(check)
            uow.commit()
        return check


class DeleteHealthCheck:
    """The designation goes; a health-check run it started stays (and still judges)."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, check_id: str) -> None:
        with self.uow() as uow:
            uow.health_checks.remove(_load(uow, check_id))
            uow.commit()


class GetHealthCheck:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, check_id: str) -> HealthCheck:
        with self.uow(read_only=True) as uow:
            return _load(uow, check_id)


class ListHealthChecks:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self) -> list[HealthCheck]:
        with self.uow(read_only=True) as uow:
            return uow.health_checks.list()


class StartDueHealthChecks:
    """The worker's duty: a health-check run on every device whose check is due, one at a
    time per device (none while one waits or runs), then a scheduling pass, all in one
    transaction under the queue lock (taken before any device row, as every pass does).
    The runs go through the queue ahead of normal work on their device (domain.scheduling).
    A designation whose test case or environment was deleted is skipped with a warning."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        ids: IdGenerator,
        queue_allowance_s: float = 600,
        queue_timeout_s: float = 24 * 3600,
    ) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids
        self.queue_allowance_s, self.queue_timeout_s = queue_allowance_s, queue_timeout_s

    def __call__(self) -> list[str]:
        with self.uow() as uow:
            designations = uow.health_checks.list()
            if not designations:
                return []
            uow.test_runs.lock_queue()
            now = self.clock.now()
            due = due_checks(
                designations, all_devices(uow), uow.health_checks.checking_device_ids(), now
            )
            started = []
            for check in due:
                run = self._run_for(uow, check)
                if run is None:
                    continue
                locked = uow.devices.get_many_for_update([check.device.id])
                if not locked:
                    continue
                device: Device = locked[0]
                device.health_check_started(now)
                uow.devices.update(device)
                uow.test_runs.add(run)
                started.append(run.id)
            if started:
                schedule_in(uow, self.ids, now)
                uow.commit()
        return started

    def _run_for(self, uow: UnitOfWork, due: DueCheck) -> TestRun | None:
        cases = [uow.test_cases.get(i) for i in due.test_case_ids]
        environment = uow.environments.get(due.environment_id)
        if environment is None or any(c is None for c in cases):
            _log.warning(
                "health check of device %s skipped: a designated test case or environment "
                "no longer exists",
                due.device.name,
            )
            return None
        _log.info("health check of device %s: %s", due.device.name, due.reason)
        now = self.clock.now()
        return TestRun.submit(
            id=self.ids.new_id(),
            test_cases=[with_parameters(c.snapshot(), {}) for c in cases if c],
            environment=environment.snapshot(),
            device_ids=[due.device.id],
            started_by=HEALTH_CHECK_ACTOR,
            at=now,
            queue_allowance_s=self.queue_allowance_s,
            queue_timeout_s=self.queue_timeout_s,
            purpose=RunPurpose.HEALTH_CHECK,
        )


class ClearDeviceHealth:
    """An engineer looked at a bad device: it may be booked again (health unknown until its
    next check). The pass after the commit gives it to whoever waits for it."""

    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self, device_id: str, actor: str, reason: str = "") -> Device:
        with self.uow() as uow:
            found = uow.devices.get_many_for_update([device_id])
            if not found:
                raise NotFound("device", device_id)
            device = found[0]
            device.clear_health(self.clock.now(), actor, reason)
            uow.devices.update(device)
            uow.commit()
        after_devices_freed(ScheduleWaitingRuns(self.uow, self.clock, self.ids))
        return device
