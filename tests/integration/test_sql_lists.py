"""Lists on SQL: keyset pagination and every filter, checked against the in-memory twin.

The same story is played through the use cases on both; every list, filter and page size
must then give the same items in the same order, page after page."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.pagination import encode_cursor
from application.ports import DeviceFilter, NameFilter, RunFilter
from application.use_cases.devices import SetDeviceStatusRequest
from domain.devices import DeviceStatus
from domain.errors import InvalidValue
from domain.test_runs import Observation, ResultReport, RunStatus, Verdict

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)

# Code-point order is the contract: capitals before lower case, digits before letters, and
# punctuation where its code point puts it.
DEVICE_NAMES = [
    "meter-b",
    "Meter-A",
    "meter_a",
    "meter a",
    "10-dongle",
    "9-dongle",
    "émile",
    "Zeta",
    "alpha",
    "ALPHA2",
    "dongle 50%",
    "dongle 5_0",
]


def walk(list_items: Callable[..., Any], where: Any, limit: int) -> list[str]:
    """Every id of a list, page by page."""
    seen: list[str] = []
    cursor = None
    while True:
        page = list_items(where, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += [item.id for item in page.items]
        if page.next_cursor is None:
            return seen
        assert page.items, "a page that promises more must not be empty"
        cursor = page.next_cursor


def play_story(lab: Any) -> dict[str, Any]:
    """Devices, test cases, environments and runs in every state; several runs share a
    creation time, so the id must break the tie."""
    devices = {}
    for n, name in enumerate(DEVICE_NAMES):
        devices[name] = lab.add_device(
            name,
            model="EM-3" if n % 2 else "DG-1",
            serial=f"SN-{n:03d}",
            firmware_version=f"{1 + n % 3}.0",
            location="Bench 4" if n % 3 == 0 else "rack",
            labels={"site": "berlin" if n % 2 else "paris", **({"rf": "yes"} if n % 4 else {})},
        )
    cases = [
        lab.add_test_case("Voltage drop", tags=["power"]),
        lab.add_test_case("voltage peak", tags=["power", "slow"]),
        lab.add_test_case("radio range", tags=["rf"]),
    ]
    hot = lab.add_environment("hot")
    cold = lab.add_environment("Cold")

    runs = []
    free = [d for name, d in devices.items() if name != "Zeta"]
    for n in range(10):
        if n % 4 == 0:
            lab.clock.advance(1.5)  # four runs at a time share a creation time
        used, free = (free[:2], free[2:]) if n % 3 == 0 else (free[:1], free[1:])
        case_set = [cases[n % 3]] + ([cases[(n + 1) % 3]] if n % 2 else [])
        run = lab.start(used, case_set, hot if n % 2 else cold, started_by=f"user{n % 2}")
        runs.append(run)
        if n % 5 == 1:
            lab.record_started(run.id)
        elif n % 5 == 2:
            lab.record_result(
                run.id,
                [
                    ResultReport(c.id, d.id, (Observation("voltage", 230),))
                    for c in run.test_cases
                    for d in run.devices
                ],
            )
        elif n % 5 == 3:
            first_case, first_device = run.test_cases[0].id, run.devices[0].id
            lab.record_result(
                run.id, [ResultReport(first_case, first_device, (Observation("x", 1),))]
            )
        elif n % 5 == 4:
            lab.cancel_test_run(run.id, "alice")
        if n % 5 >= 2:
            free += used  # the run ended: its devices are free again
    lab.set_device_status(
        SetDeviceStatusRequest(device_id=devices["Zeta"].id, status="offline", reason="test")
    )
    return {"devices": devices, "cases": cases, "environments": [hot, cold], "runs": runs}


@pytest.fixture
def twin(lab_factory: Any) -> Any:
    store = InMemoryStore()
    return lab_factory(
        functools.partial(InMemoryUnitOfWork, store), SettableClock(T0), SequentialIds()
    )


@pytest.fixture
def stories(lab: Any, twin: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    assert lab.clock.now() == twin.clock.now() == T0
    sql_story = play_story(lab)
    twin_story = play_story(twin)
    assert [r.id for r in sql_story["runs"]] == [r.id for r in twin_story["runs"]]
    return sql_story, twin_story


DEVICE_FILTERS = [
    DeviceFilter(),
    DeviceFilter(status=DeviceStatus.IN_TEST),
    DeviceFilter(status=DeviceStatus.AVAILABLE),
    DeviceFilter(status=DeviceStatus.OFFLINE),
    DeviceFilter(text="METER"),
    DeviceFilter(text="em-3"),
    DeviceFilter(text="bench"),
    DeviceFilter(text="sn-00"),
    DeviceFilter(text="2.0"),
    DeviceFilter(text="50%"),
    DeviceFilter(text="5_"),
    DeviceFilter(text="nothing like this"),
    DeviceFilter(label=("site", None)),
    DeviceFilter(label=("site", "paris")),
    DeviceFilter(label=("rf", None)),
    DeviceFilter(label=("rf", "no")),
    DeviceFilter(status=DeviceStatus.AVAILABLE, text="dongle", label=("site", "berlin")),
]


def test_device_lists_match_the_twin_page_by_page(stories: Any, lab: Any, twin: Any) -> None:
    for limit in (1, 3, 50):
        for where in DEVICE_FILTERS:
            mine, theirs = (
                walk(lab.list_devices, where, limit),
                walk(twin.list_devices, where, limit),
            )
            assert mine == theirs, (where, limit)


def test_devices_come_in_code_point_order_of_name(stories: Any, lab: Any) -> None:
    sql_story, _ = stories
    names = {d.id: d.name for d in sql_story["devices"].values()}
    listed = [names[i] for i in walk(lab.list_devices, DeviceFilter(), 5)]
    assert listed == sorted(DEVICE_NAMES)
    assert len(set(listed)) == len(DEVICE_NAMES)


def test_device_filters_find_what_they_say(stories: Any, lab: Any) -> None:
    def names(**where: Any) -> set[str]:
        return {d.name for d in lab.list_devices(DeviceFilter(**where), limit=100).items}

    assert names(text="METER") == {"meter-b", "Meter-A", "meter_a", "meter a"}
    assert names(text="r_a") == {"meter_a"}  # _ is a character, not a wildcard
    assert names(text="50%") == {"dongle 50%"}
    assert names(status=DeviceStatus.OFFLINE) == {"Zeta"}
    assert names(label=("rf", "no")) == set()


NAME_FILTERS = [
    NameFilter(),
    NameFilter(text="VOLT"),
    NameFilter(tag="power"),
    NameFilter(tag="slow", text="peak"),
    NameFilter(tag="pow"),
]


def test_catalog_lists_match_the_twin(stories: Any, lab: Any, twin: Any) -> None:
    for limit, where in itertools.product((1, 2, 50), NAME_FILTERS):
        mine, theirs = (
            walk(lab.list_test_cases, where, limit),
            walk(twin.list_test_cases, where, limit),
        )
        assert mine == theirs, (where, limit)
        by_text = NameFilter(text=where.text)
        mine = walk(lab.list_environments, by_text, limit)
        assert mine == walk(twin.list_environments, by_text, limit), (by_text, limit)


def _run_filters(story: dict[str, Any]) -> list[RunFilter]:
    devices, cases, envs, runs = (
        story["devices"],
        story["cases"],
        story["environments"],
        story["runs"],
    )
    middle = runs[4].created_at
    return [
        RunFilter(),
        *(RunFilter(status=s) for s in RunStatus),
        *(RunFilter(verdict=v) for v in Verdict),
        RunFilter(device_id=devices["meter-b"].id),
        RunFilter(device_id=devices["Meter-A"].id),
        RunFilter(device_id="no-such-device"),
        RunFilter(environment_id=envs[0].id),
        RunFilter(environment_id=envs[1].id),
        RunFilter(test_case_id=cases[0].id),
        RunFilter(test_case_id=cases[2].id),
        RunFilter(firmware="2.0"),
        RunFilter(firmware="9.9"),
        RunFilter(created_from=middle),
        RunFilter(created_to=middle),
        RunFilter(created_from=middle, created_to=middle),
        RunFilter(created_from=middle - timedelta(microseconds=1)),
        RunFilter(status=RunStatus.COMPLETED, environment_id=envs[1].id, firmware="1.0"),
    ]


def test_run_lists_match_the_twin_page_by_page(stories: Any, lab: Any, twin: Any) -> None:
    sql_story, _ = stories
    for limit, where in itertools.product((1, 3, 4, 50), _run_filters(sql_story)):
        mine, theirs = (
            walk(lab.list_test_runs, where, limit),
            walk(twin.list_test_runs, where, limit),
        )
        assert mine == theirs, (where, limit)


def test_runs_come_newest_first_without_gaps_or_repeats_across_equal_times(
    stories: Any, lab: Any
) -> None:
    sql_story, _ = stories
    runs = sql_story["runs"]
    assert len({r.created_at for r in runs}) < len(runs)  # the story has ties
    expected = [r.id for r in sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)]
    for limit in (1, 2, 3, 4, 7):
        assert walk(lab.list_test_runs, RunFilter(), limit) == expected


def test_each_run_filter_finds_what_it_says(stories: Any, lab: Any) -> None:
    story, _ = stories
    runs = story["runs"]

    def found(**where: Any) -> set[str]:
        return {r.id for r in lab.list_test_runs(RunFilter(**where), limit=200).items}

    def expected(predicate: Callable[[Any], bool]) -> set[str]:
        return {r.id for r in (lab.get_test_run(run.id) for run in runs) if predicate(r)}

    meter_b = story["devices"]["meter-b"].id
    hot = story["environments"][0].id
    case = story["cases"][1].id
    middle = runs[4].created_at
    checks = {
        "status": (dict(status=RunStatus.RUNNING), lambda r: r.status is RunStatus.RUNNING),
        "verdict": (dict(verdict=Verdict.PASS), lambda r: r.verdict is Verdict.PASS),
        "device": (dict(device_id=meter_b), lambda r: meter_b in r.device_ids),
        "environment": (dict(environment_id=hot), lambda r: r.environment.id == hot),
        "case": (dict(test_case_id=case), lambda r: case in [c.id for c in r.test_cases]),
        "firmware": (
            dict(firmware="3.0"),
            lambda r: "3.0" in [d.firmware_version for d in r.devices],
        ),
        "from": (dict(created_from=middle), lambda r: r.created_at >= middle),
        "to": (dict(created_to=middle), lambda r: r.created_at <= middle),
    }
    for name, (where, predicate) in checks.items():
        wanted = expected(predicate)
        assert wanted, f"the story has no run for the {name} filter to find"
        assert found(**where) == wanted, name
    assert found(verdict=Verdict.FAIL) == set()


def test_a_forged_run_cursor_is_invalid(lab: Any) -> None:
    with pytest.raises(InvalidValue, match="cursor"):
        lab.list_test_runs(
            RunFilter(), limit=5, cursor=encode_cursor("test_runs", ("yesterday", "x"))
        )
