"""Parsing job and cancel messages: the runner's typed Job, and clear errors for broken ones."""

from __future__ import annotations

import json

import pytest

from application.job_contract import cancel_payload
from application.runner import InvalidJob, UnsupportedContractVersion, parse_cancellation, parse_job
from domain.execution import Execution
from domain.test_cases import Condition
from tests.support.runner import job_bytes, job_message, make_run


def broken(change) -> dict:
    message = job_message(make_run(parameters={"load_kw": 2.5}, cases=2))
    change(message)
    return message


def test_a_job_message_becomes_a_typed_job():
    run = make_run(parameters={"load_kw": 2.5}, cases=2, devices=3)

    job = parse_job(job_bytes(run, token="t0k3n"))

    assert job.run_id == run.id
    assert job.contract_version == 2
    assert (job.created_at, job.deadline) == (run.created_at, run.deadline)
    assert job.parameters == {"load_kw": 2.5}
    assert [c.id for c in job.test_cases] == ["case-1", "case-2"]
    case = job.test_cases[0]
    assert case.criteria[0].condition is Condition.LE
    assert case.parameters == {"load_kw": 2.5}
    assert (case.duration_s, case.timeout_s) == (0, 60)
    assert job.timeout_s == 120
    assert [d.serial for d in job.devices] == ["S1", "S2", "S3"]
    assert job.devices[0].labels == {"phase": "L1"}
    assert job.environment.variables == {"temp_c": "40"}
    assert job.callback.base_url == f"http://devicelab.test/api/runner/test-runs/{run.id}"
    assert job.callback.token == "t0k3n"
    assert "t0k3n" not in repr(job)


def test_each_case_carries_its_execution():
    execution = Execution("command", ("/opt/lab/measure", "--bench", "3"), per_device=False)
    run = make_run(execution=execution, parameters={"command": ["sh", "-c", "id"]})

    case = parse_job(job_bytes(run)).test_cases[0]

    assert case.execution == execution
    assert case.parameters == {"command": ["sh", "-c", "id"]}  # only data


def test_a_version_1_message_is_refused_not_guessed():
    """Version 1 runners took the command from the parameters: its messages are not run."""
    message = job_message(make_run(parameters={"executor": "command", "command": ["id"]}))
    message["contract_version"] = 1
    for case in message["test_cases"]:
        del case["execution"]
    with pytest.raises(UnsupportedContractVersion, match="speaks version 2"):
        parse_job(message)


def test_a_decoded_message_and_unknown_fields_are_fine():
    message = job_message(make_run())
    message["added_in_a_later_minor_change"] = {"x": 1}
    message["test_cases"][0]["also_new"] = True
    assert parse_job(message).run_id == "run-1"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\xff\xfe not utf-8", "not JSON"),
        (b"{ broken", "not JSON"),
        (b'"a string"', "must be a JSON object"),
    ],
)
def test_a_body_that_is_no_json_object_is_invalid(body, problem):
    with pytest.raises(InvalidJob, match=problem):
        parse_job(body)


@pytest.mark.parametrize("version", [None, 0, 1, 3, "2", True])
def test_another_contract_version_is_unsupported(version):
    message = broken(lambda m: m.update(contract_version=version))
    with pytest.raises(UnsupportedContractVersion, match="contract_version"):
        parse_job(message)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m.pop("run_id"), "run_id is missing"),
        (lambda m: m.update(run_id=""), "run_id must be a non-empty string"),
        (lambda m: m.update(deadline="tomorrow"), "deadline must be an ISO 8601"),
        (lambda m: m.update(deadline="2026-03-01T10:00:00"), "deadline must carry a UTC offset"),
        (lambda m: m.update(test_cases=[]), "test_cases must be a non-empty list"),
        (lambda m: m.update(devices=["dev-1"]), r"devices\[0\] must be an object"),
        (lambda m: m["devices"][0].pop("id"), r"devices\[0\].id is missing"),
        (lambda m: m.update(devices=m["devices"] * 2), "devices lists the same id"),
        (lambda m: m["test_cases"][1].update(criteria=[]), r"test_cases\[1\].criteria must be"),
        (
            lambda m: m["test_cases"][0]["criteria"][0].update(threshold="high"),
            r"test_cases\[0\].criteria\[0\].threshold must be a number",
        ),
        (
            lambda m: m["test_cases"][0]["criteria"][0].update(condition="~"),
            "condition must be one of",
        ),
        (lambda m: m["test_cases"][0].update(timeout_s=0), "timeout_s must be a whole number"),
        (lambda m: m["test_cases"][0].update(duration_s=1.5), "duration_s must be a whole"),
        (lambda m: m["environment"].update(variables={"a": 1}), "variables must map"),
        (lambda m: m["test_cases"][0].pop("execution"), r"test_cases\[0\].execution is missing"),
        (
            lambda m: m["test_cases"][0]["execution"].update(executor="telepathy"),
            "executor must be one of",
        ),
        (
            lambda m: m["test_cases"][0]["execution"].update(executor="command", command="rm -rf"),
            "command must be a list of strings",
        ),
        (lambda m: m.pop("callback"), "callback is missing"),
        (lambda m: m["callback"].update(token=""), "callback.token"),
        (lambda m: m["callback"].update(base_url="ftp://x/runs/1"), "http:// or https://"),
    ],
)
def test_a_broken_job_names_its_problem(change, problem):
    with pytest.raises(InvalidJob, match=problem):
        parse_job(broken(change))


def test_a_cancel_message_names_its_run():
    run = make_run()
    run.abort(run.created_at, by="alice", reason="wrong firmware")

    cancellation = parse_cancellation(json.dumps(cancel_payload(run)).encode())

    assert (cancellation.run_id, cancellation.reason) == (run.id, "wrong firmware")


def test_a_broken_cancel_message_is_invalid():
    with pytest.raises(InvalidJob):
        parse_cancellation(b'{"contract_version": 2}')
