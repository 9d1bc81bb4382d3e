"""Unit-test fixtures: the in-memory adapters, a clock that only moves when told, stable ids,
and every use case wired to them (the `lab`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import settings

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.ports import OutboxMessage
from application.use_cases.catalog import (
    CreateEnvironment,
    CreateTestCase,
    CriterionInput,
    DeleteEnvironment,
    DeleteTestCase,
    EnvironmentInput,
    GetEnvironment,
    GetTestCase,
    ListEnvironments,
    ListTestCases,
    TestCaseInput,
    UpdateEnvironment,
    UpdateTestCase,
)
from application.use_cases.devices import (
    DeleteDevice,
    GetDevice,
    GetDeviceHistory,
    ListDevices,
    MarkSilentDevicesOffline,
    RecordHeartbeat,
    RegisterDevice,
    RegisterDeviceRequest,
    SetDeviceStatus,
    UpdateDevice,
)
from application.use_cases.holds import (
    Actor,
    ExpireHolds,
    ExtendHold,
    GetHold,
    ListHolds,
    PlaceHold,
    PlaceHoldRequest,
    ReleaseHold,
)
from application.use_cases.scheduling import GetQueue, ScheduleWaitingRuns
from application.use_cases.test_runs import (
    CancelTestRun,
    ExpireOverdueRuns,
    GetTestRun,
    ListTestRuns,
    RecordRunFailure,
    RecordRunProgress,
    RecordRunReleased,
    RecordRunResult,
    RecordRunStarted,
    ReofferAbandonedJobs,
    StartTestRun,
    StartTestRunRequest,
)
from domain.devices import Device
from domain.environments import Environment
from domain.holds import Hold
from domain.test_cases import TestCase
from domain.test_runs import TestRun

# Property tests stay small by default so the unit suite runs in seconds; set
# DEVICELAB_PROPERTY_EFFORT=thorough for a long soak (nightly, or after changing a state machine).
_EFFORT = {
    "fast": {"max_examples": 50, "stateful_step_count": 35},
    "thorough": {"max_examples": 1000, "stateful_step_count": 80},
}
settings.register_profile(
    "devicelab-unit",
    deadline=None,
    **_EFFORT[os.environ.get("DEVICELAB_PROPERTY_EFFORT", "fast")],
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MAX_SILENCE_S = 300
QUEUE_ALLOWANCE_S = 600
LEASE_S = 300
CLAIM_LEASE_S = 20
REOFFER_AFTER_S = 2 * CLAIM_LEASE_S
MAX_REOFFERS = 3
MAX_HOLD_S = 8 * 3600


class Lab:
    """Every use case on one in-memory store, plus builders for the usual test data.
    Readers go through the use cases too, so tests see only what was committed."""

    max_silence_s = MAX_SILENCE_S
    queue_allowance_s = QUEUE_ALLOWANCE_S
    lease_s = LEASE_S
    claim_lease_s = CLAIM_LEASE_S
    reoffer_after_s = REOFFER_AFTER_S
    max_reoffers = MAX_REOFFERS
    max_hold_s = MAX_HOLD_S

    def __init__(self, store: InMemoryStore, clock: SettableClock, ids: SequentialIds) -> None:
        self.store, self.clock, self.ids = store, clock, ids
        uow = self.new_uow
        self.register_device = RegisterDevice(uow, clock, ids)
        self.get_device = GetDevice(uow)
        self.list_devices = ListDevices(uow)
        self.update_device = UpdateDevice(uow, clock)
        self.delete_device = DeleteDevice(uow)
        self.set_device_status = SetDeviceStatus(uow, clock, ids)
        self.record_heartbeat = RecordHeartbeat(uow, clock, ids)
        self.device_history = GetDeviceHistory(uow)
        self.mark_silent_offline = MarkSilentDevicesOffline(uow, clock, MAX_SILENCE_S)

        self.create_test_case = CreateTestCase(uow, clock, ids)
        self.update_test_case = UpdateTestCase(uow, clock)
        self.delete_test_case = DeleteTestCase(uow)
        self.get_test_case = GetTestCase(uow)
        self.list_test_cases = ListTestCases(uow)
        self.create_environment = CreateEnvironment(uow, clock, ids)
        self.update_environment = UpdateEnvironment(uow, clock)
        self.delete_environment = DeleteEnvironment(uow)
        self.get_environment = GetEnvironment(uow)
        self.list_environments = ListEnvironments(uow)

        self.start_test_run = StartTestRun(uow, clock, ids, queue_allowance_s=QUEUE_ALLOWANCE_S)
        self.get_test_run = GetTestRun(uow)
        self.list_test_runs = ListTestRuns(uow)
        self.record_started = RecordRunStarted(uow, clock, ids, claim_lease_s=CLAIM_LEASE_S)
        self.record_released = RecordRunReleased(uow, clock, ids)
        self.record_progress = RecordRunProgress(uow, clock, ids, lease_s=LEASE_S)
        self.record_result = RecordRunResult(uow, clock, ids)
        self.record_failure = RecordRunFailure(uow, clock, ids)
        self.cancel_test_run = CancelTestRun(uow, clock, ids)
        self.expire_overdue_runs = ExpireOverdueRuns(uow, clock, ids)
        self.reoffer_abandoned_jobs = ReofferAbandonedJobs(
            uow, clock, ids, silent_for_s=REOFFER_AFTER_S, max_reoffers=MAX_REOFFERS
        )
        self.get_queue = GetQueue(uow, clock)
        self.schedule = ScheduleWaitingRuns(uow, clock, ids)

        self.place_hold = PlaceHold(uow, clock, ids, max_hold_s=MAX_HOLD_S)
        self.release_hold = ReleaseHold(uow, clock, ids)
        self.extend_hold = ExtendHold(uow, clock, max_hold_s=MAX_HOLD_S)
        self.get_hold = GetHold(uow)
        self.list_holds = ListHolds(uow)
        self.expire_holds = ExpireHolds(uow, clock, ids)

    def new_uow(self, read_only: bool = False) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.store, read_only)

    # -- builders --------------------------------------------------------------------------

    def add_device(self, name: str, **details: Any) -> Device:
        return self.register_device(RegisterDeviceRequest(name=name, **details))

    def add_test_case(
        self,
        name: str,
        criteria: Iterable[tuple[str, str, float] | CriterionInput] = (("voltage", "<=", 240.0),),
        **details: Any,
    ) -> TestCase:
        inputs = [c if isinstance(c, CriterionInput) else CriterionInput(*c) for c in criteria]
        # the builder sets up the lab as an admin would, execution included
        return self.create_test_case(
            TestCaseInput(name=name, criteria=inputs, **details), may_define_execution=True
        )

    def add_environment(self, name: str = "climate chamber", **details: Any) -> Environment:
        return self.create_environment(EnvironmentInput(name=name, **details))

    def start(
        self,
        devices: Iterable[Device | str],
        cases: Iterable[TestCase | str],
        environment: Environment | str,
        **request: Any,
    ) -> TestRun:
        return self.start_test_run(
            StartTestRunRequest(
                test_case_ids=[_id(c) for c in cases],
                environment_id=_id(environment),
                device_ids=[_id(d) for d in devices],
                **request,
            )
        )

    def hold(
        self,
        devices: Iterable[Device | str] = (),
        holder: str = "alice",
        duration_s: float = 3600,
        reason: str = "re-flash by hand",
        **request: Any,
    ) -> Hold:
        return self.place_hold(
            PlaceHoldRequest(
                holder=holder,
                reason=reason,
                duration_s=duration_s,
                device_ids=[_id(d) for d in devices],
                **request,
            )
        )

    def release(self, hold: Hold | str, by: str = "alice", admin: bool = False) -> Hold:
        return self.release_hold(_id(hold), Actor(by, admin))

    # -- committed state ---------------------------------------------------------------

    def outbox(self, kind: str | None = None) -> list[OutboxMessage]:
        return [m for m in self.store.outbox if kind is None or m.kind == kind]


def _id(item: Any) -> str:
    return item if isinstance(item, str) else item.id


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


@pytest.fixture
def ids() -> SequentialIds:
    return SequentialIds()


@pytest.fixture
def lab(store: InMemoryStore, clock: SettableClock, ids: SequentialIds) -> Lab:
    return Lab(store, clock, ids)
