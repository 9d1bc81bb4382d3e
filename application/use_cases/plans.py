"""Use cases of test plans: define them, start them (by hand, on a cron slot, on new
firmware), and follow their plan runs until each has its overall verdict.

A plan run and all its test runs are made in one transaction, through the same queue as any
run (`submit_run`), with one scheduling pass for all of them. The plan run's cause has a
unique key per plan (domain.plans.Cause.debounce_key): two workers, or one restarted, that
see the same cron slot or the same new firmware make one plan run, never two."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from application.errors import AlreadyExists, NotFound
from application.pagination import Page, paginate
from application.plan_ports import FirmwareSighting
from application.ports import Clock, IdGenerator, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from application.use_cases.scheduling import schedule_in
from application.use_cases.test_runs import (
    DEFAULT_QUEUE_TIMEOUT_S,
    StartTestRunRequest,
    submit_run,
)
from domain.devices import Device
from domain.errors import InvalidValue
from domain.plans import (
    Cause,
    DeviceFacts,
    PlanCell,
    PlanProgress,
    PlanRun,
    PlanRunEntry,
    PlanSnapshot,
    RunState,
    TestPlan,
    Trigger,
    progress_of,
)
from domain.scheduling import DeviceRequest

log = logging.getLogger("devicelab.plans")


def plan_key(plan: TestPlan) -> tuple:
    return (plan.name, plan.id)


def plan_run_key(plan_run: PlanRun) -> tuple:
    return (plan_run.created_at.isoformat(), plan_run.id)


def _load(uow: UnitOfWork, plan_id: str, for_update: bool = False) -> TestPlan:
    plan = uow.plans.get(plan_id, for_update=for_update)
    if plan is None:
        raise NotFound("plan", plan_id)
    return plan


def facts_of(device: Device) -> DeviceFacts:
    return DeviceFacts(device.id, device.model, dict(device.labels))


@dataclass(frozen=True)
class PlanInput:
    name: str
    test_case_ids: list[str]
    environment_ids: list[str]
    device_ids: list[str] = field(default_factory=list)
    device_requests: list[DeviceRequest] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    priority: str = "normal"
    triggers: list[Trigger] = field(default_factory=list)


def _check_references(uow: UnitOfWork, plan: TestPlan) -> None:
    """What a plan names must exist when it is defined; a start checks again (a test case
    may be deleted later, and that start is then refused with the same message)."""
    unknown = [i for i in plan.test_case_ids if uow.test_cases.get(i) is None]
    if unknown:
        raise InvalidValue("test_case_ids", f"unknown test case(s): {', '.join(unknown)}")
    unknown = [i for i in plan.environment_ids if uow.environments.get(i) is None]
    if unknown:
        raise InvalidValue("environment_ids", f"unknown environment(s): {', '.join(unknown)}")
    unknown = [i for i in plan.device_ids if uow.devices.get(i) is None]
    if unknown:
        raise InvalidValue("device_ids", f"unknown device(s): {', '.join(unknown)}")


def _ensure_name_free(uow: UnitOfWork, name: str, own_id: str | None = None) -> None:
    other = uow.plans.get_by_name(name.strip())
    if other is not None and other.id != own_id:
        raise AlreadyExists("plan", "name", name.strip(), other.name, other.id)


class CreatePlan:
    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self, data: PlanInput) -> TestPlan:
        now = self.clock.now()
        plan = TestPlan(
            id=self.ids.new_id(),
            **data.__dict__,
            created_at=now,
            updated_at=now,
            cron_checked_at=now,  # slots before the plan existed never run
        )
        with self.uow() as uow:
            _ensure_name_free(uow, plan.name)
            _check_references(uow, plan)
            uow.plans.add(plan)
            uow.commit()
        return plan


class UpdatePlan:
    def __init__(self, uow: UowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(self, plan_id: str, changes: dict[str, Any]) -> TestPlan:
        with self.uow() as uow:
            plan = _load(uow, plan_id, for_update=True)
            if isinstance(changes.get("name"), str):
                _ensure_name_free(uow, changes["name"], own_id=plan.id)
            plan.revise(self.clock.now(), **changes)
            _check_references(uow, plan)
            uow.plans.update(plan)
            uow.commit()
            return plan


class DeletePlan:
    """The plan goes; its plan runs stay readable (each keeps the plan as it was)."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, plan_id: str) -> None:
        with self.uow() as uow:
            uow.plans.remove(_load(uow, plan_id))
            uow.commit()


class GetPlan:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, plan_id: str) -> TestPlan:
        with self.uow(read_only=True) as uow:
            return _load(uow, plan_id)


class ListPlans:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(
        self, text: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[TestPlan]:
        with self.uow(read_only=True) as uow:
            return paginate(
                "plans", lambda n, after: uow.plans.list(text, n, after), plan_key, limit, cursor
            )


# -- starting ----------------------------------------------------------------------------


class PlanStarter:
    """Makes a plan run and its runs in the caller's transaction (not committed)."""

    def __init__(
        self,
        ids: IdGenerator,
        queue_allowance_s: float = 600,
        queue_timeout_s: float = DEFAULT_QUEUE_TIMEOUT_S,
    ) -> None:
        self.ids = ids
        self.queue_allowance_s, self.queue_timeout_s = queue_allowance_s, queue_timeout_s

    def start(
        self,
        uow: UnitOfWork,
        plan: PlanSnapshot,
        cause: Cause,
        now: datetime,
        cells: list[PlanCell] | None = None,
    ) -> PlanRun:
        skipped: tuple[str, ...] = ()
        if cells is None:
            named = [uow.devices.get(i) for i in plan.device_ids]
            cells = plan.cells({d.id: d.model for d in named if d is not None})
            made = {c.label for c in cells}
            every = [PlanCell(e, m, (), ()) for e in plan.environment_ids for m in plan.models]
            skipped = tuple(c.label for c in every if c.label not in made)
        if not cells:
            raise InvalidValue(
                "models", "the selection is empty: no device of the plan's models is selected"
            )
        entries = []
        for cell in cells:
            run = submit_run(
                uow,
                self.ids,
                now,
                StartTestRunRequest(
                    test_case_ids=list(plan.test_case_ids),
                    environment_id=cell.environment_id,
                    device_ids=list(cell.device_ids),
                    device_requests=list(cell.device_requests),
                    parameters=dict(plan.parameters),
                    started_by=f"plan {plan.name} ({cause.by})",
                    priority=plan.priority.value,
                ),
                self.queue_allowance_s,
                self.queue_timeout_s,
            )
            entries.append(
                PlanRunEntry(run.id, cell.environment_id, cell.model, run.environment.name)
            )
        plan_run = PlanRun(
            id=self.ids.new_id(),
            plan=plan,
            cause=cause,
            runs=tuple(entries),
            created_at=now,
            skipped=skipped,
        )
        uow.plan_runs.add(plan_run)
        schedule_in(uow, self.ids, now)
        return plan_run


class StartPlan:
    """A person starts a plan (permission to start runs): one plan run, its runs queued."""

    def __init__(self, uow: UowFactory, clock: Clock, starter: PlanStarter) -> None:
        self.uow, self.clock, self.starter = uow, clock, starter

    def __call__(self, plan_id: str, by: str) -> PlanRun:
        with self.uow() as uow:
            plan = _load(uow, plan_id)
            plan_run = self.starter.start(uow, plan.snapshot(), Cause.manual(by), self.clock.now())
            uow.commit()
        return plan_run


class FireCronTriggers:
    """The worker's look at the cron triggers: each plan with a slot due since its last look
    gets one plan run for the newest such slot (missed slots while the worker was down run
    once, not once each), and the look is recorded with it in one transaction (the plan row
    locked, the slot looked for again under the lock). A plan that cannot start (a test case
    was deleted) is logged and its slot passed over."""

    def __init__(self, uow: UowFactory, clock: Clock, starter: PlanStarter) -> None:
        self.uow, self.clock, self.starter = uow, clock, starter

    def __call__(self) -> list[str]:
        now = self.clock.now()
        with self.uow(read_only=True) as uow:
            # only plans with a slot due are written: a pass over the others costs one read
            plan_ids = [p.id for p in uow.plans.list_triggered() if p.due_cron_slot(now)]
        started = []
        for plan_id in plan_ids:
            outcome = self._look(plan_id)
            if outcome:
                started.append(outcome)
        return started

    def _look(self, plan_id: str) -> str | None:
        now = self.clock.now()
        with self.uow() as uow:
            plan = uow.plans.get(plan_id, for_update=True)
            if plan is None:
                return None
            slot = plan.due_cron_slot(now)
            plan.cron_checked_at = now
            uow.plans.update(plan)
            if slot is None:
                uow.commit()
                return None
            if uow.plan_runs.has_cause(plan.id, Cause.cron(slot).debounce_key or ""):
                uow.commit()  # another worker ran this slot a moment ago
                return None
            try:
                plan_run = self.starter.start(uow, plan.snapshot(), Cause.cron(slot), now)
                uow.commit()
                return f"plan {plan.name}: cron slot {slot.isoformat()} -> plan run {plan_run.id}"
            except (InvalidValue, AlreadyExists) as error:
                log.warning("plan %s could not start for cron slot %s: %s", plan.name, slot, error)
        self._pass_over(plan_id, now)
        return None

    def _pass_over(self, plan_id: str, now: datetime) -> None:
        with self.uow() as uow:
            plan = uow.plans.get(plan_id, for_update=True)
            if plan is not None:
                plan.cron_checked_at = now
                uow.plans.update(plan)
                uow.commit()


class FireFirmwareTriggers:
    """The worker takes up the firmware sightings: every plan with a new-firmware trigger
    whose selection has the device runs on it, once per (plan, device, version): the plan
    run's unique cause key says whether it already did (a version seen again later, a second
    worker, a sighting taken up again after a crash). Each plan run is its own transaction;
    the sightings are marked done once all their plans were handled."""

    def __init__(
        self, uow: UowFactory, clock: Clock, starter: PlanStarter, batch: int = 100
    ) -> None:
        self.uow, self.clock, self.starter, self.batch = uow, clock, starter, batch

    def __call__(self) -> list[str]:
        with self.uow(read_only=True) as uow:
            sightings = uow.firmware_sightings.pending(self.batch)
            if not sightings:
                return []
            plans = [p for p in uow.plans.list_triggered() if p.on_new_firmware]
        lines = []
        for sighting in sightings:
            for plan in plans:
                line = self._start(plan.id, sighting)
                if line:
                    lines.append(line)
        with self.uow() as uow:
            uow.firmware_sightings.mark_done([s.id for s in sightings], self.clock.now())
            uow.commit()
        return lines

    def _start(self, plan_id: str, sighting: FirmwareSighting) -> str | None:
        cause = Cause.new_firmware(sighting.device_id, sighting.firmware_version)
        with self.uow() as uow:
            plan = uow.plans.get(plan_id)
            device = uow.devices.get(sighting.device_id)
            if plan is None or device is None or not plan.on_new_firmware:
                return None
            snapshot = plan.snapshot()
            facts = facts_of(device)
            if not snapshot.selects(facts):
                return None
            if uow.plan_runs.has_cause(plan.id, cause.debounce_key or ""):
                return None
            try:
                plan_run = self.starter.start(
                    uow, snapshot, cause, self.clock.now(), snapshot.firmware_cells(facts)
                )
                uow.commit()
            except AlreadyExists:
                return None  # another worker made it between the look and the insert
            except InvalidValue as error:
                log.warning(
                    "plan %s could not start for %s on %s: %s",
                    plan.name,
                    sighting.firmware_version,
                    device.name,
                    error,
                )
                return None
        return (
            f"plan {plan.name}: firmware {sighting.firmware_version} on {device.name} "
            f"-> plan run {plan_run.id}"
        )


# -- following ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRunView:
    plan_run: PlanRun
    states: list[RunState]
    progress: PlanProgress


def _states(uow: UnitOfWork, plan_run: PlanRun) -> list[RunState]:
    states = []
    for entry in plan_run.runs:
        run = uow.test_runs.get(entry.run_id)
        if run is not None:
            states.append(RunState(run.id, run.status, run.verdict, run.progress))
    return states


def _view(uow: UnitOfWork, plan_run: PlanRun) -> PlanRunView:
    states = _states(uow, plan_run)
    return PlanRunView(plan_run, states, progress_of(states))


class GetPlanRun:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, plan_run_id: str) -> PlanRunView:
        with self.uow(read_only=True) as uow:
            plan_run = uow.plan_runs.get(plan_run_id)
            if plan_run is None:
                raise NotFound("plan run", plan_run_id)
            return _view(uow, plan_run)


class ListPlanRuns:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(
        self, plan_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[PlanRunView]:
        with self.uow(read_only=True) as uow:
            page = paginate(
                "plan_runs",
                lambda n, after: uow.plan_runs.list(plan_id, n, after),
                plan_run_key,
                limit,
                cursor,
            )
            return Page([_view(uow, r) for r in page.items], page.next_cursor)


class SettlePlanRuns:
    """Plan runs whose runs have all finished get their overall verdict (and, through
    `on_finished`, their webhook deliveries) in one transaction each."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        on_finished: Callable[[UnitOfWork, PlanRun], None] | None = None,
        batch: int = 200,
    ) -> None:
        self.uow, self.clock, self.on_finished, self.batch = uow, clock, on_finished, batch

    def __call__(self) -> list[str]:
        with self.uow(read_only=True) as uow:
            unfinished = [r.id for r in uow.plan_runs.list_unfinished(self.batch)]
        settled = []
        for plan_run_id in unfinished:
            with self.uow() as uow:
                plan_run = uow.plan_runs.get(plan_run_id)
                if plan_run is None or not plan_run.settle(
                    _states(uow, plan_run), self.clock.now()
                ):
                    continue
                uow.plan_runs.update(plan_run)
                if self.on_finished is not None:
                    self.on_finished(uow, plan_run)
                uow.commit()
            verdict = plan_run.verdict.value if plan_run.verdict else "?"
            settled.append(f"plan run {plan_run.id} of {plan_run.plan.name}: {verdict}")
        return settled
