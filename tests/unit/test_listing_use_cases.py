"""Listing with filters and keyset pagination: walking every page yields each item once."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor
from application.ports import DeviceFilter, NameFilter, RunFilter
from application.use_cases.catalog import (
    CreateEnvironment,
    CreateTestCase,
    CriterionInput,
    EnvironmentInput,
    TestCaseInput,
)
from application.use_cases.devices import (
    ListDevices,
    RegisterDevice,
    RegisterDeviceRequest,
    SetDeviceStatusRequest,
)
from application.use_cases.test_runs import ListTestRuns, StartTestRun, StartTestRunRequest
from domain.devices import DeviceStatus
from domain.errors import InvalidValue
from domain.names import name_key
from domain.test_runs import Observation, ResultReport, RunStatus, Verdict

PROPERTY = settings.get_profile("devicelab-unit")


def walk(list_page: Callable[..., Page[Any]], limit: int, **kwargs: Any) -> list[list[Any]]:
    """Every page of a list, following the cursors to the end."""
    pages, cursor = [], None
    while True:
        page = list_page(limit=limit, cursor=cursor, **kwargs)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        assert len(pages) < 1000, "the cursors never ran out"
        cursor = page.next_cursor


def ids_of(pages: list[list[Any]]) -> list[str]:
    return [item.id for page in pages for item in page]


# -- devices -----------------------------------------------------------------------------


@pytest.fixture
def fleet(lab):
    """Seven devices with varied details; two are busy and one is offline."""
    specs = [
        ("gamma", {"model": "EM-3", "labels": {"site": "berlin"}}),
        ("alpha", {"serial": "SN-ALPHA-1", "labels": {"site": "paris"}}),
        ("delta", {"firmware_version": "2.4.1"}),
        ("beta", {"location": "Rack 7", "labels": {"site": "berlin", "phase": "L1"}}),
        ("epsilon", {"model": "em-1"}),
        ("zeta", {}),
        ("eta", {"offline": True}),
    ]
    devices = {name: lab.add_device(name, **details) for name, details in specs}
    case = lab.add_test_case("soak")
    environment = lab.add_environment()
    lab.start([devices["gamma"], devices["zeta"]], [case], environment)
    return devices


def device_names(lab, **where: Any) -> list[str]:
    page = lab.list_devices(DeviceFilter(**where), limit=MAX_LIMIT)
    assert page.next_cursor is None
    return [d.name for d in page.items]


def test_devices_are_listed_by_name(lab, fleet) -> None:
    assert device_names(lab) == sorted(fleet)


@pytest.mark.parametrize(
    ("where", "names"),
    [
        ({"status": DeviceStatus.IN_TEST}, ["gamma", "zeta"]),
        ({"status": DeviceStatus.OFFLINE}, ["eta"]),
        ({"status": DeviceStatus.AVAILABLE}, ["alpha", "beta", "delta", "epsilon"]),
        ({"text": "em-"}, ["epsilon", "gamma"]),  # model, case-insensitive
        ({"text": "sn-alpha"}, ["alpha"]),  # serial
        ({"text": "rack"}, ["beta"]),  # location
        ({"text": "2.4"}, ["delta"]),  # firmware
        ({"text": "ET"}, ["beta", "eta", "zeta"]),  # name
        ({"text": "nothing like it"}, []),
        ({"label": ("site", None)}, ["alpha", "beta", "gamma"]),
        ({"label": ("site", "berlin")}, ["beta", "gamma"]),
        ({"label": ("site", "Berlin")}, []),
        ({"label": ("phase", "L1")}, ["beta"]),
        ({"status": DeviceStatus.IN_TEST, "label": ("site", None)}, ["gamma"]),
    ],
)
def test_devices_can_be_filtered(lab, fleet, where: dict[str, Any], names: list[str]) -> None:
    assert device_names(lab, **where) == names


@pytest.mark.parametrize("limit", [1, 2, 3, 6, 7, 8])
def test_walking_the_device_pages_visits_each_device_once(lab, fleet, limit: int) -> None:
    pages = walk(lab.list_devices, limit, where=DeviceFilter())
    assert [d.name for page in pages for d in page] == sorted(fleet)
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit


def test_a_filtered_walk_stays_filtered(lab, fleet) -> None:
    pages = walk(lab.list_devices, 1, where=DeviceFilter(status=DeviceStatus.AVAILABLE))
    assert [d.name for page in pages for d in page] == ["alpha", "beta", "delta", "epsilon"]


def test_a_page_reflects_changes_made_between_pages(lab, fleet) -> None:
    first = lab.list_devices(DeviceFilter(), limit=2)
    assert [d.name for d in first.items] == ["alpha", "beta"]
    lab.add_device("aardvark")  # sorts before the cursor: not on later pages
    lab.add_device("omega")  # sorts after the cursor: on a later page
    later = lab.list_devices(DeviceFilter(), limit=50, cursor=first.next_cursor)
    assert [d.name for d in later.items] == ["delta", "epsilon", "eta", "gamma", "omega", "zeta"]


def test_the_default_limit_and_its_bounds(lab) -> None:
    for n in range(DEFAULT_LIMIT + 1):
        lab.add_device(f"meter-{n:03d}")
    page = lab.list_devices(DeviceFilter())
    assert len(page.items) == DEFAULT_LIMIT
    assert page.next_cursor is not None
    assert len(lab.list_devices(DeviceFilter(), limit=MAX_LIMIT).items) == DEFAULT_LIMIT + 1


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
def test_a_limit_out_of_bounds_is_refused(lab, limit: int) -> None:
    with pytest.raises(InvalidValue) as raised:
        lab.list_devices(DeviceFilter(), limit=limit)
    assert raised.value.field == "limit"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "!!!!",
        "a",
        b64(b"not json"),
        b64(json.dumps(["only-one"]).encode()),
        b64(json.dumps(["a", "b", "c"]).encode()),
        b64(json.dumps(["a", 1]).encode()),
        b64(json.dumps({"name": "a", "id": "b"}).encode()),
        b64(b"\xff\xfe"),
    ],
)
def test_a_cursor_the_api_did_not_issue_is_refused(lab, fleet, cursor: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        lab.list_devices(DeviceFilter(), cursor=cursor)
    assert raised.value.field == "cursor"


@pytest.mark.parametrize("cursor", [None, ""])
def test_no_cursor_starts_at_the_beginning(lab, fleet, cursor: str | None) -> None:
    assert lab.list_devices(DeviceFilter(), cursor=cursor).items[0].name == "alpha"


def test_a_cursor_is_an_opaque_encoding_of_the_sort_key() -> None:
    key = ("näme with spaces/+", "id-000001")
    cursor = encode_cursor("devices", key)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode_cursor(cursor, "devices", 2) == key
    with pytest.raises(InvalidValue):
        decode_cursor(cursor, "devices", 3)
    with pytest.raises(InvalidValue):  # a cursor of one list is refused by another
        decode_cursor(cursor, "test_runs", 2)


# -- test cases and environments ---------------------------------------------------------


def test_test_cases_are_listed_by_name_and_filtered_by_text_and_tag(lab) -> None:
    lab.add_test_case("voltage soak", tags=["power", "long"])
    lab.add_test_case("current burst", tags=["power"])
    lab.add_test_case("radio range", tags=["rf"])

    def names(**where: Any) -> list[str]:
        return [c.name for c in lab.list_test_cases(NameFilter(**where)).items]

    assert names() == ["current burst", "radio range", "voltage soak"]
    assert names(tag="power") == ["current burst", "voltage soak"]
    assert names(text="SOAK") == ["voltage soak"]
    assert names(text="r", tag="rf") == ["radio range"]
    pages = walk(lab.list_test_cases, 1, where=NameFilter())
    assert [c.name for page in pages for c in page] == names()


def test_environments_are_listed_by_name_and_paged(lab) -> None:
    for name in ["chamber hot", "bench", "chamber cold"]:
        lab.add_environment(name)
    pages = walk(lab.list_environments, 2, where=NameFilter())
    assert [[e.name for e in page] for page in pages] == [
        ["bench", "chamber cold"],
        ["chamber hot"],
    ]
    assert [e.name for e in lab.list_environments(NameFilter(text="chamber")).items] == [
        "chamber cold",
        "chamber hot",
    ]


# -- test runs ---------------------------------------------------------------------------


@pytest.fixture
def history(lab):
    """Five runs over three days: two completed (pass, fail), one failed, two still queued."""
    d1 = lab.add_device("meter-01", firmware_version="1.0")
    d2 = lab.add_device("meter-02", firmware_version="2.0")
    d3 = lab.add_device("meter-03", firmware_version="1.0")
    d4 = lab.add_device("meter-04", firmware_version="3.0")
    volt = lab.add_test_case("voltage", criteria=[("voltage", "<=", 240)])
    amps = lab.add_test_case("current", criteria=[("current", "<", 16)])
    bench, chamber = lab.add_environment("bench"), lab.add_environment("chamber")

    def complete(run, voltage):
        reports = [
            ResultReport(volt.id, d.id, (Observation("voltage", voltage),)) for d in run.devices
        ]
        lab.record_result(run.id, reports)
        return run

    day = 24 * 3600
    runs = {
        "pass": complete(lab.start([d1], [volt], bench), 230),
        "open_1": lab.start([d3], [amps], chamber),  # created at the same instant
        "open_2": lab.start([d4], [volt, amps], bench),  # this one too
    }
    lab.clock.advance(day)
    runs["fail_verdict"] = complete(lab.start([d1, d2], [volt], chamber), 250)
    lab.clock.advance(day)
    runs["failed"] = lab.start([d2], [amps], bench)
    lab.record_failure(runs["failed"].id, "crash")
    return {"runs": runs, "d1": d1, "d2": d2, "volt": volt, "amps": amps, "bench": bench}


def run_ids(lab, **where: Any) -> list[str]:
    page = lab.list_test_runs(RunFilter(**where), limit=MAX_LIMIT)
    return [r.id for r in page.items]


def test_runs_are_listed_newest_first_with_ties_broken_by_id(lab, history) -> None:
    listed = lab.list_test_runs(RunFilter(), limit=MAX_LIMIT).items
    keys = [(r.created_at, r.id) for r in listed]
    assert keys == sorted(keys, reverse=True)
    assert len(listed) == 5


def test_runs_can_be_filtered(lab, history) -> None:
    runs = {name: run.id for name, run in history["runs"].items()}
    d1, d2, volt, amps, bench = (history[k] for k in ("d1", "d2", "volt", "amps", "bench"))
    assert len(run_ids(lab)) == 5
    assert set(run_ids(lab, status=RunStatus.COMPLETED)) == {runs["pass"], runs["fail_verdict"]}
    assert set(run_ids(lab, status=RunStatus.QUEUED)) == {runs["open_1"], runs["open_2"]}
    assert run_ids(lab, verdict=Verdict.FAIL) == [runs["fail_verdict"]]
    assert run_ids(lab, verdict=Verdict.PASS) == [runs["pass"]]
    assert set(run_ids(lab, device_id=d2.id)) == {runs["fail_verdict"], runs["failed"]}
    assert set(run_ids(lab, environment_id=bench.id)) == {
        runs["pass"],
        runs["failed"],
        runs["open_2"],
    }
    assert set(run_ids(lab, test_case_id=amps.id)) == {
        runs["failed"],
        runs["open_1"],
        runs["open_2"],
    }
    assert set(run_ids(lab, test_case_id=volt.id, device_id=d1.id)) == {
        runs["pass"],
        runs["fail_verdict"],
    }
    assert set(run_ids(lab, firmware="1.0")) == {runs["pass"], runs["fail_verdict"], runs["open_1"]}
    assert run_ids(lab, firmware="9.9") == []


def test_runs_can_be_filtered_by_creation_time_inclusively(lab, history) -> None:
    runs = history["runs"]
    second_day = runs["fail_verdict"].created_at
    assert run_ids(lab, created_from=second_day, created_to=second_day) == [runs["fail_verdict"].id]
    assert set(run_ids(lab, created_from=second_day)) == {
        runs["fail_verdict"].id,
        runs["failed"].id,
    }
    first_day = runs["pass"].created_at
    assert set(run_ids(lab, created_to=first_day)) == {
        runs["pass"].id,
        runs["open_1"].id,
        runs["open_2"].id,
    }


def test_a_time_window_ending_before_it_starts_is_refused(lab, history) -> None:
    start = history["runs"]["failed"].created_at
    with pytest.raises(InvalidValue):
        lab.list_test_runs(RunFilter(created_from=start, created_to=start - timedelta(seconds=1)))


@pytest.mark.parametrize("limit", [1, 2, 4, 5])
def test_walking_the_run_pages_visits_each_run_once(lab, history, limit: int) -> None:
    everything = run_ids(lab)
    assert ids_of(walk(lab.list_test_runs, limit, where=RunFilter())) == everything


def test_a_run_cursor_is_refused_for_garbage(lab, history) -> None:
    with pytest.raises(InvalidValue):
        lab.list_test_runs(RunFilter(), cursor="not-a-cursor")


def test_a_cursor_from_one_list_is_refused_by_another(lab, history) -> None:
    device_cursor = lab.list_devices(DeviceFilter(), limit=1).next_cursor
    run_cursor = lab.list_test_runs(RunFilter(), limit=1).next_cursor
    assert device_cursor and run_cursor
    with pytest.raises(InvalidValue) as raised:
        lab.list_test_runs(RunFilter(), cursor=device_cursor)
    assert raised.value.field == "cursor"
    with pytest.raises(InvalidValue):
        lab.list_devices(DeviceFilter(), cursor=run_cursor)
    with pytest.raises(InvalidValue):
        lab.list_test_cases(NameFilter(), cursor=device_cursor)


# -- properties: any data, any page size ---------------------------------------------------


def _fresh() -> tuple[InMemoryStore, Callable[[], InMemoryUnitOfWork], SettableClock]:
    store = InMemoryStore()
    return store, functools.partial(InMemoryUnitOfWork, store), SettableClock()


device_names_strategy = st.lists(
    st.text(alphabet="aAbB zZ-_09ü", min_size=1, max_size=6).filter(lambda s: s.strip()),
    unique_by=lambda s: name_key(s.strip()),  # names are unique case-insensitively
    max_size=12,
)


@PROPERTY
@given(names=device_names_strategy, limit=st.integers(1, 5), offline=st.sets(st.integers(0, 11)))
def test_any_device_walk_has_no_duplicates_and_no_gaps(
    names: list[str], limit: int, offline: set[int]
) -> None:
    store, uow, clock = _fresh()
    register = RegisterDevice(uow, clock, SequentialIds())
    for n, name in enumerate(names):
        register(RegisterDeviceRequest(name=name, offline=n in offline))
    everything = sorted(store.devices.values(), key=lambda d: (d.name, d.id))
    for where in (DeviceFilter(), DeviceFilter(status=DeviceStatus.OFFLINE)):
        expected = [d.id for d in everything if where.status in (None, d.status)]
        assert ids_of(walk(ListDevices(uow), limit, where=where)) == expected


@PROPERTY
@given(gaps=st.lists(st.sampled_from([0, 0, 0.5, 1, 3600]), max_size=12), limit=st.integers(1, 5))
def test_any_run_walk_is_newest_first_without_duplicates_or_gaps(
    gaps: list[float], limit: int
) -> None:
    store, uow, clock = _fresh()
    ids = SequentialIds()
    devices = [
        RegisterDevice(uow, clock, ids)(RegisterDeviceRequest(name=f"m{n}"))
        for n in range(len(gaps))
    ]
    case = CreateTestCase(uow, clock, ids)(
        TestCaseInput(name="soak", criteria=[CriterionInput("v", "<", 1)])
    )
    environment = CreateEnvironment(uow, clock, ids)(EnvironmentInput(name="bench"))
    start = StartTestRun(uow, clock, ids)
    for device, gap in zip(devices, gaps, strict=True):
        clock.advance(gap)
        start(StartTestRunRequest([case.id], environment.id, [device.id]))
    expected = [r.id for r in sorted(store.test_runs.values(), key=lambda r: (r.created_at, r.id))]
    expected.reverse()
    assert ids_of(walk(ListTestRuns(uow), limit, where=RunFilter())) == expected


def test_a_device_taken_offline_by_hand_is_listed_as_offline(lab, fleet) -> None:
    lab.set_device_status(SetDeviceStatusRequest(fleet["alpha"].id, "offline"))
    assert device_names(lab, status=DeviceStatus.OFFLINE) == ["alpha", "eta"]


def test_retired_devices_are_listed_only_when_asked_for(lab, fleet) -> None:
    lab.set_device_status(SetDeviceStatusRequest(fleet["alpha"].id, "retired", "display broken"))
    lab.set_device_status(SetDeviceStatusRequest(fleet["beta"].id, "maintenance", "new probe"))
    everyone = sorted(fleet)
    assert device_names(lab) == [n for n in everyone if n != "alpha"]
    assert device_names(lab, include_retired=True) == everyone
    assert device_names(lab, status=DeviceStatus.RETIRED) == ["alpha"]
    assert device_names(lab, status=DeviceStatus.MAINTENANCE) == ["beta"]
    assert device_names(lab, status=DeviceStatus.AVAILABLE) == ["delta", "epsilon"]
