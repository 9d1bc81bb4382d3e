"""The richer criteria over HTTP: what a client may define (and the 422s for what it may
not), what a runner may report (samples, bounded), and how a marginal or inconclusive
outcome reads back in the run, the lists, JUnit and CSV."""

from __future__ import annotations

import pytest

from tests.e2e.test_bad_input import assert_error

BETWEEN = {
    "metric": "voltage",
    "condition": "between",
    "min": 207,
    "max": 253,
    "unit": "V",
    "of": "max",
    "marginal": {"min": 250},
}


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        ({"condition": "between", "min": 5, "max": 1}, "min must not be greater than max"),
        ({"condition": "between", "min": 5}, "between needs max"),
        ({"condition": "within_percent", "nominal": 230, "percent": 0}, "percent must be"),
        ({"condition": "within_percent", "nominal": 230, "percent": -2}, "percent must be"),
        ({"condition": "<", "threshold": 1, "of": "median"}, "Must be one of"),
        ({"condition": "<", "threshold": 1, "marginal": {"min": 3, "max": 2}}, "marginal.min"),
        ({"condition": "<", "threshold": 1, "marginal": {"low": 3}}, "Unknown field"),
        ({"condition": "<", "threshold": 1, "marginal": {}}, "needs min, max or both"),
        ({"condition": "between", "min": 1, "max": 2, "threshold": 3}, "does not belong"),
    ],
)
def test_a_criterion_that_cannot_be_judged_is_a_422_naming_why(client, criterion, message):
    body = {"name": "t", "criteria": [{"metric": "v", **criterion}]}
    error = assert_error(client.post("/api/test-cases", json=body), 422)
    assert message in str(error["errors"]), error


def test_range_criteria_read_back_as_defined_and_an_edit_keeps_old_runs_criteria(client, lab):
    case = client.post("/api/test-cases", json={"name": "window", "criteria": [BETWEEN]})
    assert case.status_code == 201, case.get_json()
    (criterion,) = case.get_json()["criteria"]
    assert criterion == {
        **BETWEEN,
        "threshold": None,
        "nominal": None,
        "percent": None,
        "min": 207.0,
        "max": 253.0,
        "marginal": {"min": 250.0, "max": None},
    }
    run = start(client, lab, case.get_json()["id"])
    within = {"metric": "voltage", "condition": "within_percent", "nominal": 230, "percent": 10}
    edited = client.patch(f"/api/test-cases/{case.get_json()['id']}", json={"criteria": [within]})
    assert edited.get_json()["version"] == 2
    snapshot = client.get(f"/api/test-runs/{run['id']}").get_json()["test_cases"][0]
    assert snapshot["version"] == 1 and snapshot["criteria"] == [criterion]


def start(client, lab, case_id):
    response = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [case_id],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][0]["id"]],
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def result(case_id, device_id, *measurements):
    return {
        "results": [
            {"test_case_id": case_id, "device_id": device_id, "measurements": list(measurements)}
        ]
    }


def test_samples_are_bounded_in_time_order_and_need_a_value_or_samples(app, client, lab, report):
    app.config["DEVICELAB_MAX_SAMPLES_PER_METRIC"] = 3
    case_id, device_id = lab["cases"][0]["id"], lab["devices"][0]["id"]
    run = start(client, lab, case_id)
    too_many = {"metric": "voltage", "samples": [[t, 230] for t in range(4)]}
    error = assert_error(report(run["id"], "result", result(case_id, device_id, too_many)), 422)
    assert "at most 3 samples per metric" in str(error["errors"])
    backwards = {"metric": "voltage", "samples": [[5, 230], [1, 231]]}
    error = assert_error(report(run["id"], "result", result(case_id, device_id, backwards)), 422)
    assert "time order" in error["message"]
    for broken in ({"metric": "voltage"}, {"metric": "voltage", "samples": [[1, 2, 3]]}):
        assert_error(report(run["id"], "result", result(case_id, device_id, broken)), 422)
    assert client.get(f"/api/test-runs/{run['id']}").get_json()["status"] == "queued"


def test_a_marginal_series_and_a_unit_mismatch_read_back_everywhere(client, lab, report):
    within = {
        "metric": "current",
        "condition": "within_percent",
        "nominal": 10,
        "percent": 5,
        "unit": "A",
    }
    case = client.post("/api/test-cases", json={"name": "load", "criteria": [BETWEEN, within]})
    case_id, device_id = case.get_json()["id"], lab["devices"][0]["id"]
    run = start(client, lab, case_id)
    samples = [[0, 230.0], [1.5, 251.0], [3, 240.0]]
    done = report(
        run["id"],
        "result",
        result(
            case_id,
            device_id,
            {"metric": "voltage", "unit": "V", "samples": samples},
            {"metric": "current", "unit": "mA", "value": 10000},
        ),
    )
    assert done.status_code == 200, done.get_json()
    detail = client.get(f"/api/test-runs/{run['id']}").get_json()
    voltage, current = detail["results"][0]["measurements"]
    assert (voltage["outcome"], voltage["value"], voltage["samples"]) == ("marginal", 251, samples)
    assert voltage["expected"] == "between 207 and 253 V (max of samples)"
    assert current["outcome"] == "inconclusive" and current["passed"] is None
    assert current["reason"] == "unit mA differs from criterion unit A"
    assert detail["results"][0]["verdict"] == detail["verdict"] == "inconclusive"
    listed = client.get("/api/test-runs").get_json()["items"]
    assert all("samples" not in m for r in listed for x in r["results"] for m in x["measurements"])

    marginal_run = start(client, lab, case_id)
    report(
        marginal_run["id"],
        "result",
        result(
            case_id,
            device_id,
            {"metric": "voltage", "unit": "V", "samples": samples},
            {"metric": "current", "value": 10.2},
        ),
    )
    detail = client.get(f"/api/test-runs/{marginal_run['id']}").get_json()
    assert detail["verdict"] == "marginal" and detail["status"] == "completed"
    junit = client.get(f"/api/test-runs/{marginal_run['id']}/junit.xml").get_data(as_text=True)
    assert 'status="marginal"' in junit and "<failure" not in junit
    assert "marginal: voltage = 251 V, expected between 207 and 253 V" in junit
    csv = client.get("/api/test-runs.csv?verdict=marginal").get_data(as_text=True)
    header, *rows = csv.strip().splitlines()
    assert header.endswith("expected,outcome,reason")
    assert any(row.endswith("between 207 and 253 V (max of samples),marginal,") for row in rows)
