"""/api/compare, /api/regressions and /api/firmware-versions over HTTP, on every backend:
runs made and reported as a runner would, answers in the documented shape, bad input 4xx."""

from __future__ import annotations

import pytest


@pytest.fixture
def run_on(client, lab, report):
    """run_on(firmware, voltage) -> run id: flash meter-0, run the voltage case, report."""
    device = lab["devices"][0]
    case = lab["cases"][0]

    def run(firmware: str, voltage: float) -> str:
        flashed = client.patch(f"/api/devices/{device['id']}", json={"firmware_version": firmware})
        assert flashed.status_code == 200, flashed.get_json()
        started = client.post(
            "/api/test-runs",
            json={
                "test_case_ids": [case["id"]],
                "environment_id": lab["environment"]["id"],
                "device_ids": [device["id"]],
            },
        ).get_json()
        body = {
            "results": [
                {
                    "test_case_id": case["id"],
                    "device_id": device["id"],
                    "measurements": [{"metric": "voltage", "value": voltage}],
                }
            ]
        }
        assert report(started["id"], "result", body).status_code == 200
        return started["id"]

    return run


def test_compare_two_firmware_versions(client, lab, run_on):
    for voltage in (230.0, 231.0, 229.0):
        run_on("2.0.0", voltage)
    failing = [run_on("2.1.0", v) for v in (245.0, 246.0, 244.0)]
    answer = client.get("/api/compare?base_firmware=2.0.0&target_firmware=2.1.0")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["base"] == "firmware 2.0.0" and body["target"] == "firmware 2.1.0"
    assert body["counts"]["regression"] == 1
    (row,) = body["items"]
    assert row["test_case_name"] == "voltage" and row["environment_name"] == "bench"
    assert row["change"] == "regression" and row["flaky"] is False
    assert row["base"]["verdict"] == "pass" and row["target"]["verdict"] == "fail"
    assert row["target"]["latest_run"]["run_id"] == failing[-1]
    (voltage,) = row["metrics"]
    assert voltage["base"]["mean"] == 230.0 and voltage["target"]["mean"] == 245.0
    assert voltage["difference"] == 15.0 and voltage["direction"] == "worse"
    assert voltage["beyond_spread"] is True and voltage["unit"] == "V"


def test_compare_two_runs(client, run_on):
    before, after = run_on("2.0.0", 250.0), run_on("2.0.0", 230.0)
    body = client.get(f"/api/compare?base_run={before}&target_run={after}").get_json()
    assert [r["change"] for r in body["items"]] == ["fix"]


def test_regressions_and_firmware_versions(client, run_on):
    run_on("2.9.0", 230.0)
    run_on("2.10.0", 250.0)
    versions = client.get("/api/firmware-versions").get_json()["items"]
    assert [v["version"] for v in versions] == ["2.9.0", "2.10.0"]
    body = client.get("/api/regressions?status=open").get_json()
    (regression,) = body["items"]
    assert regression["status"] == "open"
    assert regression["last_passing"]["firmware"] == "2.9.0"
    assert regression["first_failing"]["firmware"] == "2.10.0"
    assert regression["fixed_by"] is None and body["flaky"] == []
    assert client.get("/api/regressions?status=closed").get_json()["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        "",
        "base_firmware=1",
        "base_firmware=1&target_firmware=2&base_run=x",
        "base_firmware=1&target_firmware=2&from=yesterday",
        "base_firmware=1&target_firmware=2&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    ],
)
def test_bad_comparisons_are_422(client, query):
    answer = client.get(f"/api/compare?{query}")
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["code"] in ("validation_error", "invalid_value")


def test_unknown_runs_and_statuses(client):
    assert client.get("/api/compare?base_run=x&target_run=y").status_code == 404
    assert client.get("/api/regressions?status=maybe").status_code == 422


def test_reading_needs_a_session(anonymous):
    for path in ("/api/compare?base_firmware=1&target_firmware=2", "/api/regressions"):
        assert anonymous.get(path).status_code == 401


def test_a_firmware_version_against_one_run_and_narrowed(client, lab, run_on):
    run_on("2.0.0", 230.0)
    run_on("2.0.0", 231.0)
    candidate = run_on("2.1.0-rc.1", 250.0)
    body = client.get(f"/api/compare?base_firmware=2.0.0&target_run={candidate}").get_json()
    assert body["target"] == f"run {candidate}"
    (row,) = body["items"]
    assert (row["change"], row["base"]["results"], row["target"]["results"]) == ("regression", 2, 1)
    assert row["metrics"][0]["beyond_spread"] is None  # one value on the target side
    other_model = client.get(
        f"/api/compare?base_firmware=2.0.0&target_run={candidate}&model=EM-24"
    ).get_json()
    assert other_model["items"] == []
    versions = [v["version"] for v in client.get("/api/firmware-versions").get_json()["items"]]
    assert versions == ["2.0.0", "2.1.0-rc.1"]
