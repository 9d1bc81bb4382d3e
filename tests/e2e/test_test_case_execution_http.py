"""Over HTTP: only a user with permission executions:define (admins) decides what a test case
executes; engineers still create and edit test cases, and a run's parameters stay data."""

from __future__ import annotations

import pytest

MEASURE = ["/opt/lab/measure", "--bench", "3"]
CRITERIA = [{"metric": "voltage", "condition": "<=", "threshold": 240}]


def create(client, name, **body):
    return client.post("/api/test-cases", json={"name": name, "criteria": CRITERIA, **body})


def test_an_engineer_cannot_set_the_execution(client, signed_in):
    engineer = signed_in("engineer")

    refused = create(engineer, "pwn", execution={"executor": "command", "command": ["sh"]})

    assert refused.status_code == 403
    body = refused.get_json()
    assert body["code"] == "forbidden"
    assert "executions:define" in body["message"]
    assert body["errors"] == {"execution": ["needs permission executions:define"]}
    assert client.get("/api/test-cases?q=pwn").get_json()["items"] == []
    # the runner's default is no decision: engineers still create test cases
    made = create(engineer, "plain", execution={"executor": ""})
    assert made.status_code == 201
    assert made.get_json()["execution"] == {"executor": "", "command": [], "per_device": True}


def test_an_engineer_edits_a_case_but_not_what_it_executes(client, signed_in):
    engineer = signed_in("engineer")
    case = create(client, "soak", execution={"executor": "command", "command": MEASURE})
    assert case.status_code == 201, case.get_json()
    path = f"/api/test-cases/{case.get_json()['id']}"

    for execution in (
        {"executor": "command", "command": ["sh", "-c", "id"]},
        {"executor": "simulate"},
        {"executor": "command", "command": MEASURE, "per_device": False},
    ):
        refused = engineer.patch(path, json={"execution": execution})
        assert refused.status_code == 403, execution
        assert "executions:define" in refused.get_json()["message"]
    edited = engineer.patch(
        path,
        json={"description": "longer", "execution": {"executor": "command", "command": MEASURE}},
    )
    assert edited.status_code == 200
    assert edited.get_json()["version"] == 2
    assert edited.get_json()["execution"]["command"] == MEASURE


def test_an_admin_sets_the_execution_and_the_version_bumps(client):
    case = create(client, "soak").get_json()
    assert case["version"] == 1

    changed = client.patch(
        f"/api/test-cases/{case['id']}",
        json={"execution": {"executor": "command", "command": MEASURE, "per_device": False}},
    )

    assert changed.status_code == 200
    assert changed.get_json()["version"] == 2
    assert changed.get_json()["execution"] == {
        "executor": "command",
        "command": MEASURE,
        "per_device": False,
    }
    again = client.get(f"/api/test-cases/{case['id']}").get_json()
    assert again["execution"]["command"] == MEASURE


@pytest.mark.parametrize(
    "execution",
    [
        {"executor": "sh"},
        {"executor": "command"},
        {"executor": "command", "command": "measure --all"},
        {"executor": "command", "command": [1]},
        {"executor": "simulate", "command": MEASURE},
        {"executor": "command", "command": ["x"] * 65},
        {"executor": "command", "command": MEASURE, "shell": True},
        "command",
    ],
)
def test_an_execution_that_cannot_be_is_422(client, execution):
    response = create(client, "bad", execution=execution)
    assert response.status_code == 422, response.get_json()
    assert "execution" in response.get_json()["errors"]


def test_a_run_shows_how_each_case_was_executed_and_parameters_stay_data(client, signed_in, lab):
    case = lab["cases"][0]
    client.patch(
        f"/api/test-cases/{case['id']}",
        json={"execution": {"executor": "command", "command": MEASURE}},
    )
    engineer = signed_in("engineer")
    hostile = {"executor": "command", "command": ["sh", "-c", "id"], "command_per_device": False}

    started = engineer.post(
        "/api/test-runs",
        json={
            "test_case_ids": [case["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][0]["id"]],
            "parameters": hostile,
        },
    )

    assert started.status_code == 201, started.get_json()
    (snapshot,) = started.get_json()["test_cases"]
    assert snapshot["execution"] == {"executor": "command", "command": MEASURE, "per_device": True}
    assert snapshot["parameters"] == hostile
