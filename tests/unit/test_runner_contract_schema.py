"""docs/job-message.schema.json describes exactly what devicelab publishes: the job message of
a real run validates against it, broken ones do not, and every field the message carries is
described (so a field added to job_payload without documenting it fails here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from application.job_contract import JOB_KIND, cancel_payload, drain_payload
from application.runner import parse_job
from application.use_cases.catalog import CriterionInput, ExecutionInput
from tests.support.runner import job_message, make_run

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "job-message.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return schema


@pytest.fixture(scope="module")
def validator(schema) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=FormatChecker())


@pytest.fixture
def published(lab) -> dict[str, Any]:
    """The job of a run started through the use case, as the relay publishes it."""
    devices = [
        lab.add_device("meter-01", model="M1", serial="S1", firmware_version="1.0"),
        lab.add_device("meter-02", labels={"phase": "L2", "rack": "3"}),
    ]
    cases = [
        lab.add_test_case(
            "voltage window",
            criteria=[("voltage", ">=", 207), ("voltage", "<=", 253)],
            duration_s=30,
            timeout_s=120,
            default_parameters={"load": {"kw": 2.5, "steps": [1, 2]}},
            execution=ExecutionInput("command", ["/opt/lab/measure", "--load"], per_device=False),
            tags=["power", "nightly"],
            description="holds the voltage window under load",
        ),
        lab.add_test_case(
            "all conditions",
            criteria=[
                ("a", "<", 1),
                ("b", "<=", 2.5),
                ("c", ">", -3),
                ("d", ">=", 0),
                ("e", "==", 1),
                ("f", "!=", 0),
                CriterionInput("g", "between", min=1, max=2, unit="V", marginal={"min": 1.9}),
                CriterionInput("h", "within_percent", nominal=230, percent=2.5, of="p95"),
            ],
        ),
    ]
    environment = lab.add_environment("chamber", variables={"temp_c": "40", "rh": "85"})
    run = lab.start(devices, cases, environment, parameters={"firmware_channel": "beta"})
    (message,) = lab.outbox(JOB_KIND)
    assert message.run_id == run.id
    return {
        **message.payload,
        "callback": {
            "base_url": f"https://devicelab.example/api/runner/test-runs/{run.id}",
            "token": "eyJydW4iOiJ4In0.signature",
        },
    }


def test_the_published_job_message_is_valid(validator, published):
    validator.validate(json.loads(json.dumps(published)))


def test_the_runner_reads_the_range_criteria_as_they_were_defined(published):
    (case,) = [c for c in parse_job(published).test_cases if c.name == "all conditions"]
    between, within = case.criteria[6], case.criteria[7]
    assert (between.min, between.max, between.marginal.min) == (1, 2, 1.9)
    assert (within.nominal, within.percent, within.of.value) == (230, 2.5, "p95")


def test_a_message_of_the_test_helpers_is_valid_and_the_runner_parses_it(validator):
    message = job_message(make_run(cases=2, devices=3, parameters={"x": None}))
    validator.validate(message)
    assert parse_job(message).run_id == "run-1"


def test_the_cancel_message_is_valid(schema):
    run = make_run()
    run.abort(run.created_at, by="alice")
    cancel_schema = {
        "$schema": schema["$schema"],
        "$defs": schema["$defs"],
        "$ref": "#/$defs/cancel_message",
    }
    Draft202012Validator(cancel_schema).validate(cancel_payload(run))


@pytest.mark.parametrize(
    "breakage",
    [
        lambda m: m.pop("callback"),
        lambda m: m["callback"].pop("token"),
        lambda m: m["callback"].update(base_url="ftp://devicelab.example/x"),
        lambda m: m.update(contract_version=1),
        lambda m: m["test_cases"][0].pop("execution"),
        lambda m: m["test_cases"][0]["execution"].update(executor="sh"),
        lambda m: m["test_cases"][0]["execution"].update(command="rm -rf /"),
        lambda m: m.update(deadline="next tuesday"),
        lambda m: m.update(devices=[]),
        lambda m: m["test_cases"][0]["criteria"][0].update(condition="=<"),
        lambda m: m["test_cases"][0]["criteria"][0].update(threshold="240"),
        lambda m: m["test_cases"][0]["criteria"][0].pop("threshold"),
        lambda m: m["test_cases"][1]["criteria"][6].pop("max"),
        lambda m: m["test_cases"][1]["criteria"][7].update(percent=0),
        lambda m: m["test_cases"][1]["criteria"][7].update(of="median"),
        lambda m: m["test_cases"][1]["criteria"][6].update(marginal={}),
        lambda m: m["test_cases"][0].update(timeout_s=0),
        lambda m: m["devices"][0]["labels"].update(rack=3),
    ],
)
def test_a_broken_message_is_not_valid(validator, published, breakage):
    breakage(published)
    assert not validator.is_valid(published)


def _undescribed(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> list:
    """Paths of object keys in `value` that the schema does not name (free-form maps aside)."""
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].split("/")[-1]]
    missing = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                missing.append(f"{path}.{key}")
            else:
                missing += _undescribed(item, schema["properties"][key], root, f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            missing += _undescribed(item, schema["items"], root, f"{path}[{index}]")
    return missing


def test_every_field_of_the_message_is_described_in_the_schema(schema, published):
    assert _undescribed(published, schema, schema, "$") == []


def _control_schema(schema, name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}
    )


def test_the_drain_message_is_valid_and_a_cancel_is_no_drain(schema):
    drain = _control_schema(schema, "drain_message")
    drain.validate(drain_payload("bench-pc-3-0", True, "maintenance"))
    drain.validate(drain_payload("bench-pc-3-0", False))
    run = make_run()
    run.abort(run.created_at, by="alice")
    assert not drain.is_valid(cancel_payload(run))
    assert not drain.is_valid({**drain_payload("r", True), "drained": "yes"})
