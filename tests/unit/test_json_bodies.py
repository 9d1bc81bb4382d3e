"""The busiest views build their JSON by hand (`device_json`, `run_json`; see
adapters/http/json_bodies.py) instead of dumping their schema field by field; the schema
still documents the answer. These properties hold the two to the same output."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from adapters.http.devices import DeviceSchema, device_json
from adapters.http.test_runs import TestRunSchema, run_json
from domain.devices import Device, ServiceNote, ServiceState
from domain.environments import EnvironmentSnapshot
from domain.health import DeviceHealth, HealthNote
from domain.holds import HoldNote
from domain.names import BIDI_CONTROLS
from domain.test_cases import Condition, Criterion, Statistic, TestCaseSnapshot
from domain.test_runs import (
    CaseResult,
    DeviceSnapshot,
    Measurement,
    RunStatus,
    TestRun,
    Verdict,
)
from tests.support.criteria import criteria_of

# names and labels may hold any text but control and bidi characters (domain/names.py)
text = st.text(
    st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=BIDI_CONTROLS), max_size=30
)
name = text.filter(lambda s: s.strip())
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones
)
moments = st.none() | instants
devices = st.builds(
    Device,
    id=st.uuids().map(str),
    name=name,
    model=text,
    serial=text,
    firmware_version=text,
    location=text,
    labels=st.dictionaries(name, text, max_size=5),
    held_by=st.none() | st.uuids().map(str),
    hold=st.none()
    | st.builds(HoldNote, hold_id=st.uuids().map(str), holder=text, until=instants, reason=text),
    service_state=st.sampled_from(list(ServiceState)),
    service_note=st.none() | st.builds(ServiceNote, by=text, reason=text, since=instants),
    last_seen_at=moments,
    created_at=moments,
    updated_at=moments,
    health=st.sampled_from(list(DeviceHealth)),
    health_note=st.none()
    | st.builds(
        HealthNote, run_id=st.none() | st.uuids().map(str), reason=text, by=text, since=instants
    ),
)


@given(devices)
def test_device_json_is_what_the_schema_dumps(device: Device) -> None:
    by_schema = DeviceSchema().dump(device)
    built = device_json(device)
    assert built == by_schema
    assert list(built) == list(by_schema)  # same key order, so the same bytes on the wire
    assert json.dumps(built) == json.dumps(by_schema)


def test_every_field_of_the_schema_is_built() -> None:
    device = Device(
        "d1", "meter", labels={"site": "lab"}, held_by="r1", service_state=ServiceState.OFFLINE
    )
    assert set(device_json(device)) == set(DeviceSchema().fields)
    assert device_json(device)["offline_pending"] is True
    assert device_json(device)["drain_pending"] is False
    assert device_json(device)["status"] == "in_test"


def test_a_drained_device_shows_its_pending_maintenance_and_who_set_it() -> None:
    since = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    device = Device(
        "d1",
        "meter",
        held_by="r1",
        service_state=ServiceState.MAINTENANCE,
        service_note=ServiceNote("alice@lab", "recalibrate", since),
    )
    built = device_json(device)
    assert (built["status"], built["drain_pending"], built["offline_pending"]) == (
        "in_test",
        True,
        False,
    )
    assert built["out_of_service"] == {
        "by": "alice@lab",
        "reason": "recalibrate",
        "since": "2026-12-01T09:00:00+00:00",
    }


# -- runs -----------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
number = finite | st.integers(-1000, 1000)  # an int must come out as a float, as the schema has it
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | finite | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
criteria = criteria_of(name, text)
cases = st.builds(
    TestCaseSnapshot,
    id=st.uuids().map(str),
    version=st.integers(1, 50),
    name=name,
    description=text,
    criteria=st.lists(criteria, max_size=3).map(tuple),
    duration_s=st.integers(0, 10**5),
    timeout_s=st.integers(1, 10**5),
    parameters=st.dictionaries(text, json_values, max_size=3),
    tags=st.lists(text, max_size=3).map(tuple),
)
measurements = st.builds(
    Measurement,
    metric=name,
    condition=st.sampled_from([c.value for c in Condition]),
    threshold=st.none() | number,
    unit=text,
    value=st.none() | number,
    passed=st.none() | st.booleans(),
    marginal=st.booleans(),
    reason=text,
    of=st.sampled_from([s.value for s in Statistic]),
    expected=text,
    samples=st.lists(st.tuples(finite, finite), max_size=3).map(tuple),
)
results = st.builds(
    CaseResult,
    test_case_id=st.uuids().map(str),
    device_id=st.uuids().map(str),
    verdict=st.sampled_from(list(Verdict)),
    measurements=st.lists(measurements, max_size=3).map(tuple),
    message=text,
    started_at=moments,
    finished_at=moments,
)
runs = st.builds(
    TestRun,
    id=st.uuids().map(str),
    test_cases=st.lists(cases, min_size=1, max_size=3).map(tuple),
    environment=st.builds(
        EnvironmentSnapshot,
        id=st.uuids().map(str),
        name=name,
        description=text,
        variables=st.dictionaries(name, text, max_size=3),
    ),
    devices=st.lists(
        st.builds(
            DeviceSnapshot,
            id=st.uuids().map(str),
            name=name,
            model=text,
            serial=text,
            firmware_version=text,
            labels=st.dictionaries(name, text, max_size=3),
        ),
        min_size=1,
        max_size=3,
    ),
    started_by=text,
    created_at=instants,
    deadline=instants,
    parameters=st.dictionaries(text, json_values, max_size=3),
    status=st.sampled_from(list(RunStatus)),
    verdict=st.none() | st.sampled_from(list(Verdict)),
    started_at=moments,
    finished_at=moments,
    failure_reason=text,
    progress=st.floats(0, 1) | st.sampled_from([0, 1]),
    progress_message=text,
    last_report_at=moments,
    runner=text,
    results=st.lists(results, max_size=3).map(
        lambda rs: {(r.test_case_id, r.device_id): r for r in rs}
    ),
)

GRAFANA = "https://grafana.example/d/lab?var-run={run_id}&from={start_ms}&to={end_ms}"


@pytest.mark.parametrize("template", ["", GRAFANA])
@given(run=runs)
def test_run_json_is_what_the_schema_dumps(template: str, run: TestRun) -> None:
    app = Flask(__name__)
    app.config["DEVICELAB_GRAFANA_URL_TEMPLATE"] = template
    with app.app_context():
        by_schema = TestRunSchema().dump(run)
        built = run_json(run, with_samples=True)
        listed = run_json(run)
    assert built == by_schema
    assert json.dumps(built) == json.dumps(by_schema)  # same keys in the same order
    for result in by_schema["results"]:  # lists leave the series out, nothing else
        for measurement in result["measurements"]:
            del measurement["samples"]
    assert listed == by_schema


def test_every_field_of_the_run_schema_is_built() -> None:
    run = TestRun.create(
        id="r1",
        test_cases=[
            TestCaseSnapshot("c1", 1, "volt", "", (Criterion("v", Condition.LT, 3),), 5, 60, {}, ())
        ],
        environment=EnvironmentSnapshot("e1", "bench", "", {}),
        devices=[DeviceSnapshot("d1", "meter")],
        started_by="ada",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        queue_allowance_s=60,
    )
    app = Flask(__name__)
    with app.app_context():
        assert set(run_json(run)) == set(TestRunSchema().fields)
