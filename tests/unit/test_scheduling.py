"""The scheduler's rules, one example each: queue order, all or nothing, no overtaking (and
LAVA's piecemeal problem), backfill, device choice, overlapping requests, impossible items,
timeouts, what a waiting item waits for, start estimates, and the in-memory scheduler."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import InvalidValue
from domain.scheduling import (
    Demand,
    DeviceRequest,
    DeviceState,
    DeviceView,
    LabScheduler,
    WaitingItem,
    estimate_starts,
    feasible,
    plan,
    queue_positions,
    schedule,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BUSY, BOOKABLE = DeviceState.BUSY, DeviceState.BOOKABLE


def device(device_id, model="EM-340", state=BOOKABLE, seen_min_ago=0, **labels):
    seen = None if seen_min_ago is None else NOW - timedelta(minutes=seen_min_ago)
    return DeviceView(device_id, model, labels, seen, state)


def wants(*requests, named=()):
    return Demand(tuple(named), tuple(requests))


def of(model=None, count=1, role=None, **labels):
    return DeviceRequest(role, model, labels, count)


def item(item_id, demand, minute=0, priority="normal", duration_s=None, timeout_s=None):
    return WaitingItem(
        item_id,
        "run",
        priority,
        NOW + timedelta(minutes=minute),
        demand,
        expected_duration_s=duration_s,
        queue_timeout_s=timeout_s,
    )


def started(waiting, devices, now=NOW):
    return {a.item_id: sorted(a.devices) for a in schedule(waiting, devices, now)}


# -- order ---------------------------------------------------------------------------------


def test_higher_priority_first_then_first_come_first_served():
    lab = [device("m1")]
    queue = [
        item("late-normal", wants(of("EM-340")), minute=-1),
        item("early-normal", wants(of("EM-340")), minute=-5),
        item("late-high", wants(of("EM-340")), minute=0, priority="high"),
        item("early-low", wants(of("EM-340")), minute=-9, priority="low"),
    ]
    assert started(queue, lab) == {"late-high": ["m1"]}
    assert queue_positions(queue, NOW) == {
        "late-high": 1,
        "early-normal": 2,
        "late-normal": 3,
        "early-low": 4,
    }


def test_ties_in_time_are_broken_by_id_so_every_pass_agrees():
    lab = [device("m1")]
    queue = [item("b", wants(of("EM-340"))), item("a", wants(of("EM-340")))]
    assert started(queue, lab) == {"a": ["m1"]}
    assert started(list(reversed(queue)), list(reversed(lab))) == {"a": ["m1"]}


# -- all or nothing, no overtaking ---------------------------------------------------------


def test_a_run_that_cannot_have_all_its_devices_books_none():
    lab = [device("m1"), device("m2", state=BUSY)]
    assert started([item("pair", wants(of("EM-340", count=2)))], lab) == {}


def test_a_waiting_run_keeps_the_free_devices_it_could_use_from_later_runs():
    lab = [device("m1"), device("m2", state=BUSY)]
    queue = [
        item("pair", wants(of("EM-340", count=2)), minute=0),
        item("single", wants(of("EM-340")), minute=1),
    ]
    assert started(queue, lab) == {}
    result = plan(queue, lab, NOW)
    [pair, single] = result.waiting
    assert pair.parts[0].missing == 1 and pair.parts[0].free_for_it == 1
    assert single.parts[0].free_for_it == 0 and single.parts[0].kept_for_earlier == 1


def test_lavas_piecemeal_problem_a_two_device_run_is_not_starved_by_one_device_runs():
    """Two meters busy; a two-meter run waits; one-meter runs keep arriving. Devices free up
    one at a time. Grabbing piecemeal, each freed meter would go to the next small run and
    the pair would wait for ever. Here the first freed meter is kept for the pair, and the
    pair starts as soon as the second one frees up."""
    lab = {d.id: d for d in [device("m1", state=BUSY), device("m2", state=BUSY)]}
    queue = {"pair": item("pair", wants(of("EM-340", count=2)), minute=0)}
    holders = {"m1": "earlier-run", "m2": "earlier-run"}
    history = []
    for step in range(1, 7):
        queue[f"single-{step}"] = item(f"single-{step}", wants(of("EM-340")), minute=step)
        freed = "m1" if step % 2 else "m2"
        if holders[freed] == "earlier-run":  # the run holding it ends
            holders[freed] = None
            lab[freed] = replace(lab[freed], state=BOOKABLE)
        for assignment in schedule(queue.values(), lab.values(), NOW + timedelta(minutes=step)):
            history.append(assignment.item_id)
            del queue[assignment.item_id]
            for device_id in assignment.devices:
                holders[device_id] = assignment.item_id
                lab[device_id] = replace(lab[device_id], state=BUSY)
        if step == 1:
            assert history == [], "the first freed meter is kept for the pair"
    assert history == ["pair"], "the pair started as soon as both were free; nothing overtook it"
    assert holders == {"m1": "pair", "m2": "pair"}
    # when the pair ends, the one-meter runs go in the order they came
    for device_id in lab:
        lab[device_id] = replace(lab[device_id], state=BOOKABLE)
    assert [a.item_id for a in schedule(queue.values(), lab.values(), NOW)] == [
        "single-1",
        "single-2",
    ]


def test_backfill_a_later_run_starts_on_devices_the_waiting_run_cannot_use():
    lab = [device("m1"), device("m2", state=BUSY), device("g1", model="GW-1")]
    queue = [
        item("pair", wants(of("EM-340", count=2)), minute=0),
        item("gateway", wants(of("GW-1")), minute=1),
        item("meter", wants(of("EM-340")), minute=2),
    ]
    assert started(queue, lab) == {"gateway": ["g1"]}


def test_a_higher_priority_run_submitted_later_goes_first():
    lab = [device("m1"), device("m2", state=BUSY)]
    queue = [
        item("pair", wants(of("EM-340", count=2)), minute=0),
        item("urgent", wants(of("EM-340")), minute=5, priority="high"),
    ]
    assert started(queue, lab) == {"urgent": ["m1"]}


# -- device choice, overlapping requests, named devices ------------------------------------


def test_the_device_with_fewest_extra_labels_is_chosen_then_the_latest_seen_then_the_id():
    lab = [
        device("special", rs485="yes", seen_min_ago=0),
        device("plain-old", seen_min_ago=30),
        device("plain-new-b", seen_min_ago=1),
        device("plain-new-a", seen_min_ago=1),
        device("never-seen", seen_min_ago=None),
    ]
    assert started([item("r", wants(of("EM-340")))], lab) == {"r": ["plain-new-a"]}
    assert started([item("r", wants(of("EM-340", count=4)))], lab) == {
        "r": ["never-seen", "plain-new-a", "plain-new-b", "plain-old"]
    }
    assert started([item("r", wants(of("EM-340", rs485="yes")))], lab) == {"r": ["special"]}


def test_overlapping_requests_find_a_complete_filling_when_greedy_would_not():
    # the first part prefers a1 (fewer labels), but the second part can only have a1
    lab = [device("a1", x="1"), device("a2", y="1", z="1")]
    demand = wants(of("EM-340", role="meter"), of(role="probe", x="1"))
    [assignment] = schedule([item("r", demand)], lab, NOW)
    assert assignment.devices == {"a2": "meter", "a1": "probe"}
    assert feasible(demand, lab)


def test_a_named_device_never_fills_a_request_place_too():
    lab = [device("m1"), device("m2")]
    [assignment] = schedule([item("r", wants(of("EM-340"), named=["m1"]))], lab, NOW)
    assert assignment.devices == {"m1": None, "m2": None}
    assert started([item("r", wants(of("EM-340", count=2), named=["m1"]))], lab) == {}


# -- feasibility: the 422 ------------------------------------------------------------------


def test_feasible_counts_busy_maintenance_and_offline_devices_but_not_retired_ones():
    lab = [
        device("m1", state=BUSY),
        device("m2", state=DeviceState.MAINTENANCE),
        device("m3", state=DeviceState.OFFLINE),
        device("m4", state=DeviceState.RETIRED),
    ]
    assert feasible(wants(of("EM-340", count=3)), lab)
    answer = feasible(wants(of("EM-340", count=4)), lab)
    assert not answer
    [problem] = answer.problems
    assert (problem.parts, problem.needed, problem.matching) == ((0,), 4, 3)
    assert problem.describe(wants(of("EM-340", count=4))) == (
        "request #1 (4 × model EM-340): 3 devices match"
    )


def test_feasible_names_unknown_and_retired_devices_and_parts_short_together():
    lab = [device("m1"), device("m2"), device("old", state=DeviceState.RETIRED)]
    demand = wants(
        of("EM-340", count=2, role="meter"), of("EM-340", role="spare"), named=["old", "ghost"]
    )
    answer = feasible(demand, lab)
    messages = [p.describe(demand) for p in answer.problems]
    assert messages == [
        "device old is retired",
        "device ghost is unknown",
        "requests #1 (meter: 2 × model EM-340); #2 (spare: 1 × model EM-340) together need "
        "3 devices: 2 devices match any of them",
    ]


def test_an_item_that_can_no_longer_be_satisfied_keeps_nothing_and_is_reported():
    lab = [device("m1"), device("gone", state=DeviceState.RETIRED)]
    queue = [
        item("stuck", wants(of("EM-340"), named=["gone"]), minute=0),
        item("next", wants(of("EM-340")), minute=1),
    ]
    result = plan(queue, lab, NOW)
    assert [a.item_id for a in result.assignments] == ["next"]
    assert list(result.unsatisfiable) == ["stuck"]
    assert result.unsatisfiable["stuck"][0].reason == "retired"


def test_an_item_waiting_for_a_device_in_maintenance_keeps_nothing_and_keeps_its_place():
    lab = [device("bench", state=DeviceState.MAINTENANCE), device("m1")]
    queue = [
        item("needs-bench", wants(named=["bench", "m1"]), minute=0),
        item("later", wants(named=["m1"]), minute=1),
    ]
    result = plan(queue, lab, NOW)
    # a device in maintenance may stay there for a week: m1 must not wait with it
    assert [a.item_id for a in result.assignments] == ["later"]
    assert not result.unsatisfiable
    [asleep] = result.waiting
    assert (asleep.item_id, asleep.position, asleep.devices) == (
        "needs-bench",
        1,
        {"bench": "maintenance", "m1": "booked now"},
    )
    # once the bench is back it is first again for what it needs
    back = [device("bench"), device("m1")]
    assert started([*queue, item("third", wants(named=["m1"]), minute=2)], back) == {
        "needs-bench": ["bench", "m1"]
    }
    engine = LabScheduler(lab, queue)
    assert [a.item_id for a in engine.run(NOW)] == ["later"]


def test_a_timed_out_item_does_not_start_and_is_reported():
    lab = [device("m1")]
    queue = [item("old", wants(of("EM-340")), minute=-60, timeout_s=1800)]
    result = plan(queue, lab, NOW)
    assert result.assignments == () and result.timed_out == ("old",)
    assert queue_positions(queue, NOW) == {}


# -- what it waits for, and when it will start ---------------------------------------------


def test_waiting_for_names_busy_devices_and_devices_kept_for_an_earlier_item():
    lab = [
        device("m1", state=BUSY),
        device("m2", state=DeviceState.MAINTENANCE),
        device("m3"),
    ]
    queue = [
        item("first", wants(named=["m1", "m3"]), minute=0),
        item("second", wants(of("EM-340", count=2), named=["m2"]), minute=1),
    ]
    first, second = plan(queue, lab, NOW).waiting
    assert (first.position, first.devices, first.parts) == (1, {"m1": "busy"}, ())
    assert second.devices == {"m2": "maintenance"}
    [part] = second.parts
    assert (part.missing, part.free_for_it, part.kept_for_earlier) == (2, 0, 1)


def test_estimated_starts_follow_the_queue_forward():
    lab = [
        DeviceView("m1", "EM-340", {}, NOW, BUSY, busy_until=NOW + timedelta(minutes=10)),
        device("m2"),
        device("m3", state=DeviceState.MAINTENANCE),
    ]
    queue = [
        item("now", wants(named=["m2"]), minute=0, duration_s=600),
        item("after-m1", wants(named=["m1"]), minute=1, duration_s=1800),
        item("after-that", wants(named=["m1"]), minute=2, duration_s=60),
        item("pair", wants(named=["m1", "m2"]), minute=3),
        item("in-maintenance", wants(named=["m3"]), minute=4),
    ]
    assert estimate_starts(queue, lab, NOW) == {
        "now": NOW,
        "after-m1": NOW + timedelta(minutes=10),
        "after-that": NOW + timedelta(minutes=40),
        "pair": NOW + timedelta(minutes=41),
        "in-maintenance": None,
    }
    # the caller's expected end overrides the device's own; an end already past is now
    moved = estimate_starts(queue, lab, NOW, {"m1": NOW - timedelta(minutes=5)})
    assert moved["after-m1"] == NOW


def test_an_unknown_duration_leaves_the_items_behind_without_estimate():
    lab = [device("m1")]
    queue = [
        item("open-ended", wants(named=["m1"]), minute=0),
        item("behind", wants(named=["m1"]), minute=1, duration_s=60),
    ]
    assert estimate_starts(queue, lab, NOW) == {"open-ended": NOW, "behind": None}


# -- the in-memory scheduler ---------------------------------------------------------------


def test_the_in_memory_scheduler_starts_the_waiting_pair_when_its_second_device_frees():
    lab = [device("m1"), device("m2", state=BUSY), device("g1", model="GW-1")]
    queue = [
        item("pair", wants(of("EM-340", count=2)), minute=0),
        item("single", wants(of("EM-340")), minute=1),
        item("gateway", wants(of("GW-1")), minute=2),
    ]
    engine = LabScheduler(lab, queue)
    assert [a.item_id for a in engine.run(NOW)] == ["gateway"]
    assert engine.kept_by("pair") == {"m1"}
    engine.set_device(device("m2"))
    [assignment] = engine.run(NOW)
    assert assignment.item_id == "pair" and set(assignment.devices) == {"m1", "m2"}
    assert {d.id: d.state for d in engine.devices()} == {"m1": BUSY, "m2": BUSY, "g1": BUSY}
    assert [i.id for i in engine.waiting()] == ["single"]


def test_the_in_memory_scheduler_passes_on_what_a_cancelled_item_kept():
    lab = [device("m1"), device("m2", state=BUSY)]
    queue = [
        item("pair", wants(of("EM-340", count=2)), minute=0),
        item("single", wants(of("EM-340")), minute=1),
    ]
    engine = LabScheduler(lab, queue)
    assert engine.run(NOW) == []
    engine.withdraw("pair")
    assert [(a.item_id, dict(a.devices)) for a in engine.run(NOW)] == [("single", {"m1": None})]


# -- values --------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, -1, 101, True, 1.5])
def test_a_request_count_is_a_whole_number_from_1_to_100(count):
    with pytest.raises(InvalidValue):
        DeviceRequest(model="EM-340", count=count)


def test_a_demand_asks_for_something_and_names_each_device_once():
    with pytest.raises(InvalidValue):
        Demand()
    with pytest.raises(InvalidValue):
        Demand(("m1", "m1"))
    with pytest.raises(InvalidValue):
        Demand(requests=(DeviceRequest(count=100), DeviceRequest(count=100), DeviceRequest()))
    with pytest.raises(InvalidValue):
        DeviceRequest(labels={" ": "x"})


def test_empty_model_and_role_mean_any():
    request = DeviceRequest(role=" ", model="", labels={"type": "dongle"})
    assert (request.role, request.model) == (None, None)
    assert request.describe() == "1 × type=dongle"


def test_an_unknown_priority_is_refused():
    with pytest.raises(ValueError):
        item("r", wants(of("EM-340")), priority="urgent")
