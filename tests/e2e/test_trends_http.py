"""/api/test-cases/{id}/trend over HTTP, on every backend: runs reported as a runner would,
the trend in the documented shape, an unknown case 404, bad parameters 422."""

from __future__ import annotations

import pytest

from tests.e2e.test_comparison_http import run_on  # noqa: F401  (a fixture)


def test_the_trend_of_a_case(client, lab, run_on):  # noqa: F811
    case, device = lab["cases"][0], lab["devices"][0]
    run_on("2.0.0", 230.0)
    flashed = run_on("2.1.0", 245.0)
    answer = client.get(f"/api/test-cases/{case['id']}/trend")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["metric"], body["condition"], body["threshold"], body["unit"]) == (
        "voltage",
        "<=",
        240.0,
        "V",
    )
    assert [(p["value"], p["firmware_version"], p["verdict"]) for p in body["points"]] == [
        (230.0, "2.0.0", "pass"),
        (245.0, "2.1.0", "fail"),
    ]
    assert body["points"][0]["device_id"] == device["id"]
    assert body["points"][0]["device_name"] == device["name"]
    (change,) = body["firmware_changes"]
    assert change["run_id"] == flashed and change["previous"] == "2.0.0"
    (day,) = body["pass_rate"]
    assert (day["pass"], day["fail"], day["inconclusive"]) == (1, 1, 0)
    assert body["results"] == 2 and body["truncated"] is False
    one = client.get(f"/api/test-cases/{case['id']}/trend?limit=1").get_json()
    assert [p["value"] for p in one["points"]] == [245.0] and one["truncated"] is True


def test_an_unknown_case_is_404(client):
    answer = client.get("/api/test-cases/nope/trend")
    assert answer.status_code == 404, answer.get_json()
    assert answer.get_json()["code"] == "not_found"


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=5001",
        "limit=many",
        "from=yesterday",
        "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "metric=",
    ],
)
def test_bad_parameters_are_422(client, lab, query):
    answer = client.get(f"/api/test-cases/{lab['cases'][0]['id']}/trend?{query}")
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["code"] in ("validation_error", "invalid_value")


def test_device_utilisation_per_day(client, lab, run_on):  # noqa: F811
    run_on("2.0.0", 230.0)
    answer = client.get("/api/stats/utilisation?days=3")
    assert answer.status_code == 200, answer.get_json()
    days = answer.get_json()["items"]
    assert len(days) == 3 and days[-1]["device_seconds"] > 0
    assert sum(days[-1]["shares"].values()) == pytest.approx(1, abs=1e-3)
    assert set(days[-1]["shares"]) <= {"available", "in_test", "held", "offline", "maintenance"}
    for bad in ("days=0", "days=93", "days=x"):
        assert client.get(f"/api/stats/utilisation?{bad}").status_code == 422
