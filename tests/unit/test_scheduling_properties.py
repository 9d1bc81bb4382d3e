"""The scheduler's rules checked on thousands of random small labs, against definitions written
out here independently of the scheduler: a brute-force matcher, the "could use" relation, and
the no-overtaking and maximality rules as the issue states them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.scheduling import (
    Demand,
    DeviceRequest,
    DeviceState,
    DeviceView,
    LabScheduler,
    WaitingItem,
    feasible,
    plan,
    schedule,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MODELS = ["A", "A", "B", "C"]
LABELS = [("x", "1"), ("x", "2"), ("y", "1"), ("z", "1")]
STATES = [
    DeviceState.BOOKABLE,
    DeviceState.BOOKABLE,
    DeviceState.BOOKABLE,
    DeviceState.BOOKABLE,
    DeviceState.BUSY,
    DeviceState.BUSY,
    DeviceState.MAINTENANCE,
    DeviceState.OFFLINE,
    DeviceState.RETIRED,
]

OUT_OF_SERVICE = [DeviceState.MAINTENANCE, DeviceState.OFFLINE, DeviceState.RETIRED]

# -- random labs ---------------------------------------------------------------------------

labels = st.lists(st.sampled_from(LABELS), max_size=3, unique_by=lambda p: p[0]).map(dict)
seen = st.one_of(st.none(), st.integers(0, 5).map(lambda m: T0 - timedelta(minutes=m)))


@st.composite
def devices(draw, min_size=0, max_size=9):
    count = draw(st.integers(min_size, max_size))
    return [  # a lab of few kinds, so that items compete for the same devices
        DeviceView(
            f"d{i}",
            draw(st.sampled_from(MODELS)),
            draw(labels),
            draw(seen),
            draw(st.sampled_from(STATES)),
        )
        for i in range(count)
    ]


requests = st.builds(
    DeviceRequest,
    role=st.sampled_from([None, "meter", "gateway"]),
    model=st.sampled_from([None, "A", "A", "B"]),
    labels=st.one_of(st.just({}), st.sampled_from(LABELS[:3]).map(lambda p: dict([p]))),
    count=st.sampled_from([1, 1, 1, 2, 3]),
)


@st.composite
def demands(draw, device_ids):
    names = [*sorted(device_ids), "ghost"] if device_ids else ["ghost"]
    named = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
    if "ghost" in named and draw(st.integers(0, 3)):  # an unknown device, now and then
        named.remove("ghost")
    parts = draw(st.lists(requests, min_size=0 if named else 1, max_size=2))
    return Demand(tuple(named), tuple(parts))


@st.composite
def items(draw, device_ids, max_size=8, prefix="i", min_size=0):
    count = draw(st.integers(min_size, max_size))
    return [
        WaitingItem(
            f"{prefix}{n}",
            draw(st.sampled_from(["run", "hold"])),
            draw(st.sampled_from(["low", "normal", "normal", "high"])),
            T0 + timedelta(minutes=draw(st.integers(-5, 0))),  # ties on purpose
            draw(demands(device_ids)),
            expected_duration_s=draw(st.sampled_from([None, 60.0, 600.0])),
            queue_timeout_s=draw(st.sampled_from([None, None, 200.0, 600.0, 3600.0])),
        )
        for n in range(count)
    ]


@st.composite
def labs(draw):
    lab = draw(devices(min_size=2))
    return lab, draw(items([d.id for d in lab], min_size=2))


# -- definitions, written out independently ------------------------------------------------


def matches(request: DeviceRequest, device: DeviceView) -> bool:
    return (request.model is None or device.model == request.model) and all(
        device.labels.get(k) == v for k, v in request.labels.items()
    )


def could_use(item: WaitingItem, device: DeviceView) -> bool:
    demand = item.demand
    return device.id in demand.device_ids or any(matches(r, device) for r in demand.requests)


def fits(demand: Demand, pool: dict[str, DeviceView]) -> bool:
    """Brute force: is there any way to fill every place from the pool?"""
    if not all(n in pool for n in demand.device_ids):
        return False
    others = {d.id: d for d in pool.values() if d.id not in demand.device_ids}
    return parts_fit(demand.requests, others)


def parts_fit(requests, pool: dict[str, DeviceView]) -> bool:
    places = [r for r in requests for _ in range(r.count)]
    others = list(pool.values())

    def fill(i: int, used: set[str]) -> bool:
        if i == len(places):
            return True
        return any(
            fill(i + 1, used | {d.id}) for d in others if d.id not in used and matches(places[i], d)
        )

    return fill(0, set())


def satisfiable_ever(demand: Demand, lab: list[DeviceView]) -> bool:
    return fits(demand, {d.id: d for d in lab if d.state is not DeviceState.RETIRED})


def dormant(demand: Demand, lab: list[DeviceView]) -> bool:
    """Possible some day, but not from the devices free now or in use: it needs a device in
    maintenance or offline to come back first."""
    live = {d.id: d for d in lab if d.state in (DeviceState.BOOKABLE, DeviceState.BUSY)}
    return satisfiable_ever(demand, lab) and not fits(demand, live)


def in_order(waiting: list[WaitingItem]) -> list[WaitingItem]:
    return sorted(
        waiting,
        key=lambda i: ({"high": 0, "normal": 1, "low": 2}[i.priority], i.submitted_at, i.id),
    )


# -- the one-pass properties ---------------------------------------------------------------


@settings(max_examples=600, deadline=None)
@given(labs())
def test_a_pass_keeps_every_rule(lab):
    views, waiting = lab
    by_id = {d.id: d for d in views}
    result = plan(waiting, views, T0)
    started = {a.item_id: a.devices for a in result.assignments}
    ordered = [i for i in in_order(waiting) if not i.timed_out(T0)]
    assert set(result.timed_out) == {i.id for i in waiting if i.timed_out(T0)}
    assert not started.keys() & set(result.timed_out)

    # impossible items are exactly those no assignment could ever satisfy
    for item in ordered:
        assert (item.id in result.unsatisfiable) == (not satisfiable_ever(item.demand, views))
    live = [i for i in ordered if i.id not in result.unsatisfiable]
    # dormant items wait without keeping anything: they are neither overtaken nor block
    asleep = {i.id for i in live if dormant(i.demand, views)}
    assert not asleep & started.keys()

    # no device twice, only bookable devices, every item filled completely and correctly
    booked = [d for devices in started.values() for d in devices]
    assert len(booked) == len(set(booked))
    assert all(by_id[d].state is DeviceState.BOOKABLE for d in booked)
    items_by_id = {i.id: i for i in waiting}
    for item_id, devices in started.items():
        demand = items_by_id[item_id].demand
        assert len(devices) == demand.places
        assert all(devices[n] is None for n in demand.device_ids)
        rest = [d for d in devices if d not in demand.device_ids]
        assert parts_fit(demand.requests, {d: by_id[d] for d in rest}), (
            "the devices do not fill the request parts"
        )
        roles = sorted((r.role or "") for r in demand.requests for _ in range(r.count))
        assert sorted((devices[d] or "") for d in rest) == roles

    # assignments come in queue order
    positions = {item.id: n for n, item in enumerate(live)}
    assert [positions[a.item_id] for a in result.assignments] == sorted(
        positions[a.item_id] for a in result.assignments
    )

    # no overtaking: nothing behind a waiting item got a device that item could use
    waiting_live = [i for i in live if i.id not in started]
    keepers = [i for i in waiting_live if i.id not in asleep]
    for item in keepers:
        for later_id, devices in started.items():
            if positions[later_id] > positions[item.id]:
                assert not any(could_use(item, by_id[d]) for d in devices), (
                    f"{later_id} overtook {item.id}"
                )

    # maximal: no waiting item fits the free devices that no waiting item ahead could use
    left = {d.id: d for d in views if d.state is DeviceState.BOOKABLE and d.id not in booked}
    for item in waiting_live:
        ahead = [i for i in keepers if positions[i.id] < positions[item.id]]
        open_to_it = {
            d_id: d for d_id, d in left.items() if not any(could_use(a, d) for a in ahead)
        }
        assert not fits(item.demand, open_to_it), f"{item.id} could have started"

    # device choice: a one-part item gets the best of what was open to it
    for item in live:
        demand = item.demand
        if item.id not in started or len(demand.requests) != 1:
            continue
        request = demand.requests[0]
        ahead_waiting = [i for i in keepers if positions[i.id] < positions[item.id]]
        ahead_booked = {
            d
            for other, devs in started.items()
            if positions[other] < positions[item.id]
            for d in devs
        }
        chosen = [by_id[d] for d in started[item.id] if d not in demand.device_ids]
        for device in views:
            if (
                device.state is DeviceState.BOOKABLE
                and device.id not in started[item.id]
                and device.id not in ahead_booked
                and device.id not in demand.device_ids
                and matches(request, device)
                and not any(could_use(a, device) for a in ahead_waiting)
            ):
                assert all(c.rank < device.rank for c in chosen), f"{device.id} was better"

    if asleep:
        event("a dormant item waits")
    event(f"{min(len(started), 3)}{'+' if len(started) >= 3 else ''} started")
    keeping = [
        w
        for w in result.waiting
        if any(p.free_for_it for p in w.parts)
        or len(w.devices) < len(items_by_id[w.item_id].demand.device_ids)
    ]
    event("a waiting item keeps devices" if keeping else "no waiting item keeps devices")
    if any(len(items_by_id[i].demand.requests) > 1 for i in started):
        event("an item with several parts started")

    # every item left waiting says what it waits for, in order
    assert [w.item_id for w in result.waiting] == [i.id for i in waiting_live]
    for w in result.waiting:
        assert w.devices or w.parts, f"{w.item_id} waits for nothing"


# -- health checks -------------------------------------------------------------------------


@st.composite
def labs_with_health_checks(draw):
    """A lab where some devices are bad (booked for health checks only) and some devices have
    a health-check run waiting (one per device at most, as the worker makes them), among
    normal runs and holds of every priority submitted before and after them."""
    lab = draw(devices(min_size=2))
    lab = [replace(d, health_checks_only=draw(st.booleans())) for d in lab]
    normal = draw(items([d.id for d in lab], min_size=1))
    checked = draw(st.lists(st.sampled_from([d.id for d in lab]), unique=True, max_size=4))
    checks = [
        WaitingItem(
            f"h{n}",
            "run",
            "normal",
            T0 + timedelta(minutes=draw(st.integers(-5, 0))),
            Demand((device_id,)),
            queue_timeout_s=draw(st.sampled_from([None, 200.0, 3600.0])),
            health_check=True,
        )
        for n, device_id in enumerate(checked)
    ]
    return lab, normal + checks


@settings(max_examples=600, deadline=None)
@given(labs_with_health_checks())
def test_health_checks_go_first_and_bad_devices_get_nothing_else(lab):
    views, waiting = lab
    by_id = {d.id: d for d in views}
    started = {a.item_id: a.devices for a in schedule(waiting, views, T0)}
    items_by_id = {i.id: i for i in waiting}
    normal_booked = {
        d
        for item_id, devs in started.items()
        if not items_by_id[item_id].health_check
        for d in devs
    }
    # a bad device is never booked for normal work
    assert not any(by_id[d].health_checks_only for d in normal_booked)
    for item in waiting:
        if not item.health_check or item.timed_out(T0):
            continue
        (device_id,) = item.demand.device_ids
        device = by_id[device_id]
        if device.state is DeviceState.BOOKABLE:
            # a due health check on a free device starts now, whatever waits for the device
            # (higher priority, submitted earlier); bad or not
            assert started.get(item.id) == {device_id: None}, f"{item.id} was overtaken"
            event("a health check started")
        else:
            # it never takes a device a run or hold has, or one out of service
            assert item.id not in started
        assert device_id not in normal_booked


@settings(max_examples=250, deadline=None)
@given(labs(), st.randoms(use_true_random=False))
def test_a_pass_is_deterministic(lab, shuffler):
    views, waiting = lab
    first = schedule(waiting, views, T0)
    views, waiting = list(views), list(waiting)
    shuffler.shuffle(views)
    shuffler.shuffle(waiting)
    assert schedule(waiting, views, T0) == first
    assert schedule(waiting, views, T0) == first


@settings(max_examples=300, deadline=None)
@given(labs(), devices(max_size=6))
def test_devices_no_item_could_use_change_nothing_in_a_pass(lab, others):
    """The start and the pass read only the devices the queue names or asks for by kind
    (application.use_cases.scheduling.devices_for): the rest of the lab, whatever its state,
    must not change what a pass decides or explains."""
    views, waiting = lab
    unused = [
        replace(d, id=f"other-{d.id}")
        for d in others
        if not any(could_use(i, d) for i in waiting)  # renamed, so no item names them
    ]
    used = [d for d in views if any(could_use(i, d) for i in waiting)]
    event(f"devices left out: {len(views) - len(used) + len(unused)}")
    assert plan(waiting, used, T0) == plan(waiting, views + unused, T0)


@settings(max_examples=600, deadline=None)
@given(devices(max_size=7), st.data())
def test_feasible_agrees_with_brute_force(lab, data):
    demand = data.draw(demands([d.id for d in lab]))
    answer = feasible(demand, lab)
    assert answer.ok == satisfiable_ever(demand, lab)
    pool = [d for d in lab if d.state is not DeviceState.RETIRED]
    for problem in answer.problems:
        if problem.device_id is not None:
            assert problem.device_id in demand.device_ids
            assert problem.reason in ("unknown", "retired")
            continue
        # a group of parts that truly cannot be filled together, with the true count
        parts = [demand.requests[p] for p in problem.parts]
        assert problem.needed == sum(r.count for r in parts)
        candidates = {
            d.id
            for d in pool
            if d.id not in demand.device_ids and any(matches(r, d) for r in parts)
        }
        assert problem.matching == len(candidates) < problem.needed
        assert problem.describe(demand)


# -- incremental == full pass --------------------------------------------------------------


class Mirror:
    """The lab as plain lists, kept in step with a LabScheduler; schedule() is run on it."""

    def __init__(self, views, waiting):
        self.devices = {d.id: d for d in views}
        self.items = {i.id: i for i in waiting}
        self.engine = LabScheduler(views, waiting)
        self.now = T0

    def check_pass(self):
        expected = schedule(self.items.values(), self.devices.values(), self.now)
        got = self.engine.run(self.now)
        assert got == expected
        for assignment in expected:
            del self.items[assignment.item_id]
            for d in assignment.devices:
                self.devices[d] = replace(self.devices[d], state=DeviceState.BUSY)
        for item in list(self.items.values()):
            if item.timed_out(self.now):
                del self.items[item.id]
        assert {d.id: d for d in self.engine.devices()} == self.devices
        assert {i.id for i in self.engine.waiting()} == set(self.items)
        # at rest: nothing more can start
        assert schedule(self.items.values(), self.devices.values(), self.now) == []
        return expected

    def set_device(self, view):
        self.devices[view.id] = view
        self.engine.set_device(view)

    def remove_device(self, device_id):
        self.devices.pop(device_id, None)
        self.engine.remove_device(device_id)

    def submit(self, item):
        self.items[item.id] = item
        self.engine.submit(item)

    def withdraw(self, item_id):
        self.items.pop(item_id, None)
        self.engine.withdraw(item_id)


changes = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "state",
                "state",
                "state",
                "relabel",
                "seen",
                "remove",
                "add",
                "submit",
                "withdraw",
                "wait",
            ]
        ),
        st.integers(0, 20),
        st.sampled_from(STATES),
        labels,
        seen,
        st.booleans(),
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labs(), changes, st.data())
def test_the_incremental_scheduler_equals_a_full_pass(lab, steps, data):
    views, waiting = lab
    mirror = Mirror(views, waiting)
    mirror.check_pass()
    added = 0
    for kind, n, state, new_labels, new_seen, run_now in steps:
        ids = sorted(mirror.devices)
        if kind == "add" or (not ids and kind in ("state", "relabel", "seen", "remove")):
            mirror.set_device(DeviceView(f"n{added}", MODELS[n % 4], new_labels, new_seen, state))
            added += 1
        elif kind == "state":
            mirror.set_device(replace(mirror.devices[ids[n % len(ids)]], state=state))
        elif kind == "relabel":
            mirror.set_device(replace(mirror.devices[ids[n % len(ids)]], labels=new_labels))
        elif kind == "seen":
            mirror.set_device(replace(mirror.devices[ids[n % len(ids)]], last_seen_at=new_seen))
        elif kind == "remove":
            mirror.remove_device(ids[n % len(ids)])
        elif kind == "submit":
            for item in data.draw(
                items([*ids, "n0"], max_size=2, prefix=f"s{len(mirror.items)}_{n}_")
            ):
                if item.id not in mirror.items:
                    mirror.submit(replace(item, submitted_at=mirror.now - timedelta(minutes=n % 7)))
        elif kind == "withdraw" and mirror.items:
            mirror.withdraw(sorted(mirror.items)[n % len(mirror.items)])
        elif kind == "wait":
            mirror.now += timedelta(seconds=100 * n)
        if run_now:
            mirror.check_pass()
    mirror.check_pass()


# -- a simulated lab over time -------------------------------------------------------------


class SharedLab(RuleBasedStateMachine):
    """Engineers submit runs and holds (named devices or requests, any priority), cancel them,
    runs complete, holds end, devices go to maintenance, drop offline, come back, are retired.
    After every step the lab applies schedule(); the engine must agree with it."""

    def __init__(self):
        super().__init__()
        self.now = T0
        self.devices: dict[str, DeviceView] = {}
        self.waiting: dict[str, WaitingItem] = {}
        self.holding: dict[str, set[str]] = {}  # started item -> its devices
        self.outcome: dict[str, str] = {}
        self.submitted = 0
        self.engine = LabScheduler()

    @initialize(lab=devices(min_size=3, max_size=8))
    def build(self, lab):
        for view in lab:
            if view.state is DeviceState.BUSY:  # busy with something outside the test
                view = replace(view, state=DeviceState.BOOKABLE)
            self.devices[view.id] = view
            self.engine.set_device(view)
        self.apply_schedule()

    def put(self, view):
        self.devices[view.id] = view
        self.engine.set_device(view)

    def apply_schedule(self):
        waiting_before = dict(self.waiting)
        result = plan(self.waiting.values(), self.devices.values(), self.now)
        assert self.engine.run(self.now) == list(result.assignments)
        ordered = in_order([i for i in waiting_before.values() if not i.timed_out(self.now)])
        position = {i.id: n for n, i in enumerate(ordered)}
        for assignment in result.assignments:
            for device_id in assignment.devices:
                device = self.devices[device_id]
                assert device.state is DeviceState.BOOKABLE, f"{device_id} was {device.state}"
                assert not any(device_id in held for held in self.holding.values())
                # not overtaken: nothing ahead still waiting could use it
                for other in ordered:
                    if position[other.id] >= position[assignment.item_id]:
                        break
                    if other.id in result.unsatisfiable or other.id in {
                        a.item_id for a in result.assignments
                    }:
                        continue
                    if dormant(other.demand, list(self.devices.values())):
                        continue  # it waits for a device to come back and keeps nothing
                    assert not could_use(other, device), f"{assignment.item_id} overtook {other.id}"
                self.devices[device_id] = replace(device, state=DeviceState.BUSY)
            self.holding[assignment.item_id] = set(assignment.devices)
            del self.waiting[assignment.item_id]
            self.outcome[assignment.item_id] = "started"
        for item_id in result.timed_out:
            del self.waiting[item_id]
            self.outcome[item_id] = "timed out"
        for item_id in result.unsatisfiable:  # a device it named was retired, say
            del self.waiting[item_id]
            self.engine.withdraw(item_id)
            self.outcome[item_id] = "cancelled"

    def finish(self, item_id, how):
        for device_id in self.holding.pop(item_id):
            device = self.devices[device_id]
            if device.state is DeviceState.BUSY:
                self.put(replace(device, state=DeviceState.BOOKABLE))
        self.outcome[item_id] += f", {how}"

    @rule(data=st.data(), priority=st.sampled_from(["low", "normal", "high"]), hold=st.booleans())
    def submit(self, data, priority, hold):
        demand = data.draw(demands(list(self.devices)))
        if not feasible(demand, self.devices.values()):
            return  # the API refuses it with 422
        self.submitted += 1
        item = WaitingItem(
            f"w{self.submitted}",
            "hold" if hold else "run",
            priority,
            self.now,
            demand,
            queue_timeout_s=data.draw(st.sampled_from([None, 300.0, 3600.0])),
        )
        self.waiting[item.id] = item
        self.engine.submit(item)
        self.outcome[item.id] = "waiting"
        self.apply_schedule()

    @precondition(lambda self: self.waiting)
    @rule(n=st.integers(0, 100))
    def cancel_waiting(self, n):
        item_id = sorted(self.waiting)[n % len(self.waiting)]
        del self.waiting[item_id]
        self.engine.withdraw(item_id)
        self.outcome[item_id] = "cancelled"
        self.apply_schedule()

    @precondition(lambda self: self.holding)
    @rule(n=st.integers(0, 100), how=st.sampled_from(["completed", "aborted", "released"]))
    def end_started(self, n, how):
        self.finish(sorted(self.holding)[n % len(self.holding)], how)
        self.apply_schedule()

    @rule(n=st.integers(0, 100), state=st.sampled_from(OUT_OF_SERVICE))
    def take_out(self, n, state):
        """Maintenance, offline or retired; a device in use stays with its run until it ends
        (draining) and is then not given back."""
        device_id = sorted(self.devices)[n % len(self.devices)]
        if self.devices[device_id].state is DeviceState.RETIRED:
            return
        if any(device_id in held for held in self.holding.values()):
            return
        self.put(replace(self.devices[device_id], state=state))
        self.apply_schedule()

    @rule(n=st.integers(0, 100))
    def bring_back(self, n):
        device_id = sorted(self.devices)[n % len(self.devices)]
        if self.devices[device_id].state in (DeviceState.MAINTENANCE, DeviceState.OFFLINE):
            self.put(replace(self.devices[device_id], state=DeviceState.BOOKABLE))
            self.apply_schedule()

    @rule(minutes=st.integers(1, 90))
    def time_passes(self, minutes):
        self.now += timedelta(minutes=minutes)
        self.apply_schedule()

    @invariant()
    def no_device_held_twice(self):
        held = [d for devices in self.holding.values() for d in devices]
        assert len(held) == len(set(held))
        assert all(self.devices[d].state is DeviceState.BUSY for d in held)

    @invariant()
    def nothing_waiting_could_start_now(self):
        assert schedule(self.waiting.values(), self.devices.values(), self.now) == []

    def teardown(self):
        """With no new work, every waiting item ends started (or timed out, or cancelled):
        end everything started, bring every device back, and schedule until the queue is
        empty; the queue must move every time."""
        for view in list(self.devices.values()):
            if view.state in (DeviceState.MAINTENANCE, DeviceState.OFFLINE):
                self.put(replace(view, state=DeviceState.BOOKABLE))
        while self.waiting or self.holding:
            before = len(self.waiting)
            for item_id in list(self.holding):
                self.finish(item_id, "completed")
            self.apply_schedule()
            assert len(self.waiting) < before or not self.waiting, "the queue is stuck"
        assert all(
            o.split(",")[0] in ("started", "cancelled", "timed out") for o in self.outcome.values()
        )


SharedLab.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_a_shared_lab = SharedLab.TestCase
