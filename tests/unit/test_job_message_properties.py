"""Property tests of the runner's job message parser (application/runner/jobs.py):
whatever arrives on the queue, parse_job either returns a Job or raises InvalidJob (of which
UnsupportedContractVersion is one) — never anything else, which would crash the runner instead
of dead-lettering the message — and every message devicelab publishes parses back to exactly
the run it came from."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.job_contract import CONTRACT_VERSION
from application.runner import InvalidJob, parse_cancellation, parse_job
from application.runner.jobs import Job
from domain.environments import EnvironmentSnapshot
from domain.test_cases import TestCaseSnapshot
from domain.test_runs import DeviceSnapshot, TestRun
from tests.support.criteria import criteria_of
from tests.support.runner import job_bytes, job_message, make_run

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def parses_or_refuses(message) -> Job | None:
    try:
        job = parse_job(message)
    except InvalidJob:
        return None
    assert isinstance(job, Job)
    return job


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused_as_invalid(raw):
    parses_or_refuses(raw)


@SETTINGS
@given(json_values)
def test_any_json_document_parses_or_is_refused_as_invalid(document):
    parses_or_refuses(json.dumps(document).encode())
    if isinstance(document, dict):
        parses_or_refuses(document)  # already decoded, as some transports hand it over


@SETTINGS
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=12))
def test_any_object_claiming_the_current_version_parses_or_is_refused(fields):
    parses_or_refuses({**fields, "contract_version": CONTRACT_VERSION})
    with contextlib.suppress(InvalidJob):
        parse_cancellation({**fields, "contract_version": CONTRACT_VERSION})


def _paths(value, prefix=()):
    """Every place in a decoded message: (path to it, is it inside a list)."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


def _replace(value, path, new, delete):
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    if not rest and delete:
        del copy[head]
    else:
        copy[head] = _replace(copy[head], rest, new, delete)
    return copy


VALID = job_message(make_run(parameters={"load_kw": 2.5}, cases=2, devices=2))
PATHS = [p for p in _paths(VALID) if p]


@SETTINGS
@given(st.sampled_from(PATHS), json_values, st.booleans())
def test_a_valid_message_with_one_part_broken_parses_or_is_refused(path, new, delete):
    message = _replace(VALID, path, new, delete)
    parses_or_refuses(message)
    parses_or_refuses(json.dumps(message).encode())


# -- valid messages round-trip ---------------------------------------------------------------

names = st.text(min_size=1, max_size=30).filter(lambda s: s.strip())
optional_text = st.text(max_size=30)
identifiers = st.uuids().map(str)
plain_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
criteria = criteria_of(names, optional_text)


@st.composite
def case_snapshots(draw, case_id):
    duration = draw(st.integers(0, 10_000))
    return TestCaseSnapshot(
        id=case_id,
        version=draw(st.integers(1, 10_000)),
        name=draw(names),
        description=draw(optional_text),
        criteria=tuple(draw(st.lists(criteria, min_size=1, max_size=4))),
        duration_s=duration,
        timeout_s=draw(st.integers(max(duration, 1), 20_000)),
        parameters=draw(st.dictionaries(st.text(max_size=8), plain_json, max_size=4)),
        tags=tuple(draw(st.lists(st.text(max_size=10), max_size=3))),
    )


@st.composite
def runs(draw):
    case_ids = draw(st.lists(identifiers, min_size=1, max_size=3, unique=True))
    device_ids = draw(st.lists(identifiers, min_size=1, max_size=4, unique=True))
    labels = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)
    offset = draw(st.integers(-12 * 60, 14 * 60))
    at = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
    return TestRun.create(
        id=draw(identifiers),
        test_cases=[draw(case_snapshots(i)) for i in case_ids],
        environment=EnvironmentSnapshot(
            draw(identifiers), draw(names), draw(optional_text), draw(labels)
        ),
        devices=[
            DeviceSnapshot(
                i,
                draw(names),
                draw(optional_text),
                draw(optional_text),
                draw(optional_text),
                draw(labels),
            )
            for i in device_ids
        ],
        started_by="property test",
        at=at.replace(tzinfo=timezone(timedelta(minutes=offset))).astimezone(UTC),
        queue_allowance_s=draw(st.integers(0, 86_400)),
        parameters=draw(st.dictionaries(st.text(max_size=8), plain_json, max_size=4)),
    )


@SETTINGS
@given(runs(), st.text(min_size=1, max_size=40).filter(str.strip))
def test_every_published_job_parses_back_to_its_run(run, token):
    job = parse_job(job_bytes(run, token=token))
    assert job.run_id == run.id
    assert (job.created_at, job.deadline) == (run.created_at, run.deadline)
    assert job.parameters == run.parameters
    assert job.test_cases == run.test_cases
    # the job carries the environment's id, name and variables (docs/runner-contract.md)
    environment = run.environment
    assert (job.environment.id, job.environment.name) == (environment.id, environment.name)
    assert job.environment.variables == environment.variables
    assert job.devices == run.devices
    assert job.callback.token == token
    assert job.callback.base_url.endswith(f"/api/runner/test-runs/{run.id}")
