"""Property test: runs and holds in one queue, on the in-memory adapters. Random starts and
holds (named devices and requests by kind, random priorities), releases, expiry, run ends,
cancels, maintenance and its end; after every step:

- no device is held by two runs or holds, and every booked run and active hold has exactly
  its devices;
- a device in maintenance is never booked (only a drain keeps the holder it had);
- no waiting item could start now: the scheduler leaves no free matching set unused;
- nothing finished or ended keeps a device, and nothing waiting has one."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.use_cases.catalog import (
    CreateEnvironment,
    CreateTestCase,
    CriterionInput,
    EnvironmentInput,
    TestCaseInput,
)
from application.use_cases.devices import (
    RegisterDevice,
    RegisterDeviceRequest,
    SetDeviceStatus,
    SetDeviceStatusRequest,
)
from application.use_cases.holds import (
    Actor,
    ExpireHolds,
    PlaceHold,
    PlaceHoldRequest,
    ReleaseHold,
)
from application.use_cases.test_runs import (
    CancelTestRun,
    RecordRunResult,
    StartTestRun,
    StartTestRunRequest,
)
from domain.devices import ServiceState
from domain.errors import InvalidTransition
from domain.holds import HoldStatus
from domain.queueing import device_view, hold_item, waiting_item
from domain.scheduling import DeviceRequest, plan
from domain.test_runs import RunStatus

PROPERTY = settings.get_profile("devicelab-unit")
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
DEVICES = [
    ("meter-0", "EM-340"),
    ("meter-1", "EM-340"),
    ("meter-2", "EM-340"),
    ("gw-0", "GW"),
    ("gw-1", "GW"),
]
LONG_QUEUE_TIMEOUT_S = 30 * 24 * 3600  # no item times out during an example

demands = st.one_of(
    st.tuples(
        st.lists(st.sampled_from(range(len(DEVICES))), min_size=1, max_size=2, unique=True),
        st.just(()),
    ),
    st.tuples(
        st.just([]),
        st.tuples(
            st.builds(
                DeviceRequest,
                model=st.sampled_from(["EM-340", "GW", None]),
                count=st.integers(1, 2),
            )
        ),
    ),
)
priorities = st.sampled_from(["low", "normal", "high"])


class HoldsAndRunsMachine(RuleBasedStateMachine):
    runs = Bundle("runs")
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.store = InMemoryStore()
        self.clock = SettableClock(T0)
        ids = SequentialIds()

        def uow(read_only: bool = False) -> InMemoryUnitOfWork:
            return InMemoryUnitOfWork(self.store, read_only)

        register = RegisterDevice(uow, self.clock, ids)
        self.device_ids = [
            register(RegisterDeviceRequest(name=name, model=model)).id for name, model in DEVICES
        ]
        self.case_id = CreateTestCase(uow, self.clock, ids)(
            TestCaseInput("voltage", [CriterionInput("voltage", "<=", 240)], duration_s=60)
        ).id
        self.environment_id = CreateEnvironment(uow, self.clock, ids)(EnvironmentInput("bench")).id
        self.start_test_run = StartTestRun(
            uow, self.clock, ids, queue_timeout_s=LONG_QUEUE_TIMEOUT_S
        )
        self.record_result = RecordRunResult(uow, self.clock, ids)
        self.cancel_test_run = CancelTestRun(uow, self.clock, ids)
        self.place_hold = PlaceHold(
            uow, self.clock, ids, max_hold_s=3600, queue_timeout_s=LONG_QUEUE_TIMEOUT_S
        )
        self.release_hold = ReleaseHold(uow, self.clock, ids)
        self.expire_holds = ExpireHolds(uow, self.clock, ids)
        self.set_device_status = SetDeviceStatus(uow, self.clock, ids)
        # the holder a device had when it was set to maintenance (a drain): the only one it
        # may keep while in maintenance
        self.drained_from: dict[str, str | None] = {}

    # -- rules -------------------------------------------------------------------------------

    @rule(target=runs, demand=demands, priority=priorities)
    def start_run(self, demand, priority: str) -> str:
        named, requests = demand
        run = self.start_test_run(
            StartTestRunRequest(
                [self.case_id],
                self.environment_id,
                [self.device_ids[i] for i in named],
                device_requests=list(requests),
                priority=priority,
            )
        )
        return run.id

    @rule(
        target=holds,
        demand=demands,
        priority=priorities,
        duration=st.sampled_from([60, 300, 600]),
        holder=st.sampled_from(["alice", "bob"]),
    )
    def place(self, demand, priority: str, duration: int, holder: str) -> str:
        named, requests = demand
        hold = self.place_hold(
            PlaceHoldRequest(
                holder,
                "bench work",
                duration,
                device_ids=[self.device_ids[i] for i in named],
                device_requests=list(requests),
                priority=priority,
            )
        )
        return hold.id

    @rule(hold_id=holds, by=st.sampled_from(["alice", "bob"]), admin=st.booleans())
    def release(self, hold_id: str, by: str, admin: bool) -> None:
        hold = self.store.holds[hold_id]
        may = admin or by == hold.holder
        try:
            ended = self.release_hold(hold_id, Actor(by, admin))
        except InvalidTransition:
            assert hold.status is HoldStatus.ENDED
            return
        except Exception as refused:  # Forbidden
            assert not may, refused
            assert self.store.holds[hold_id].status is hold.status
            return
        assert may
        expected = "released" if hold.status is HoldStatus.ACTIVE else "cancelled"
        assert (ended.status, ended.end_reason) == (HoldStatus.ENDED, expected)

    @rule(run_id=runs, cancel=st.booleans())
    def end_run(self, run_id: str, cancel: bool) -> None:
        run = self.store.test_runs[run_id]
        if run.status.finished:
            return
        if cancel or run.waiting:
            self.cancel_test_run(run_id, by="carol")
        else:
            self.record_result(run_id, [])
        assert self.store.test_runs[run_id].status.finished

    @rule(seconds=st.sampled_from([0, 59, 61, 301, 700]))
    def time_passes_and_holds_expire(self, seconds: int) -> None:
        self.clock.advance(seconds)
        now = self.clock.now()
        due = {h.id for h in self.store.holds.values() if h.is_expired(now)}
        assert set(self.expire_holds()) == due
        for hold_id in due:
            assert self.store.holds[hold_id].end_reason == "expired"

    @rule(
        device=st.sampled_from(range(len(DEVICES))),
        status=st.sampled_from(["maintenance", "available"]),
    )
    def maintenance(self, device: int, status: str) -> None:
        device_id = self.device_ids[device]
        before = self.store.devices[device_id]
        self.set_device_status(SetDeviceStatusRequest(device_id, status, "probe", "bob"))
        if status == "maintenance":
            if before.service_state is not ServiceState.MAINTENANCE:
                self.drained_from[device_id] = before.held_by
        else:
            self.drained_from.pop(device_id, None)

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def every_device_has_at_most_one_holder_and_every_holder_all_of_its_devices(self) -> None:
        booked: dict[str, str] = {}
        for run in self.store.test_runs.values():
            if run.holds_devices:
                for device_id in run.device_ids:
                    assert device_id not in booked, f"{device_id} twice"
                    booked[device_id] = run.id
            else:
                assert run.status.finished or run.devices == ()
        for hold in self.store.holds.values():
            if hold.status is HoldStatus.ACTIVE:
                for device_id in hold.device_ids:
                    assert device_id not in booked, f"{device_id} twice"
                    booked[device_id] = hold.id
            elif hold.waiting:
                assert hold.devices == ()
        actual = {d.id: d.held_by for d in self.store.devices.values() if d.held_by}
        assert actual == booked

    @invariant()
    def a_device_in_maintenance_is_never_booked(self) -> None:
        for device in self.store.devices.values():
            if device.service_state is ServiceState.MAINTENANCE and device.held_by is not None:
                assert device.held_by == self.drained_from.get(device.id)

    @invariant()
    def no_waiting_item_could_start_now(self) -> None:
        waiting_runs = [r for r in self.store.test_runs.values() if r.status is RunStatus.WAITING]
        waiting_holds = [h for h in self.store.holds.values() if h.waiting]
        items = [*map(waiting_item, waiting_runs), *map(hold_item, waiting_holds)]
        views = [device_view(d) for d in self.store.devices.values()]
        decided = plan(items, views, self.clock.now())
        assert decided.assignments == (), decided.assignments
        assert decided.unsatisfiable == {}


TestHoldsAndRunsMachine = HoldsAndRunsMachine.TestCase
TestHoldsAndRunsMachine.settings = PROPERTY
