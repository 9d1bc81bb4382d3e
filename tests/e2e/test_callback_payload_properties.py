"""Property tests of the runner callbacks' payload parsing (the marshmallow schemas in
adapters/http/runner_callbacks.py), through the Flask test client with a valid run credential:

- any JSON body, to any report, is answered 200, 409 or 422 in the usual error shape — never a
  5xx, whatever its types, sizes, numbers (NaN, huge) or nesting;
- a valid progress report's partial results come back in the run as sent: each criterion of
  the case with the value reported for its metric (none if it was not reported);
- a valid final result completes the run with exactly those results (pairs not reported are
  inconclusive), frees its devices, and a repeat of it changes nothing."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPORTS = ["started", "progress", "result", "failed", "released"]
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# the in-memory backend: these examples are about parsing, not storage
pytestmark = pytest.mark.parametrize("backend", ["memory"], indirect=True)

# what a valid report may say: any text but the NUL character and lone surrogates (category
# Cs), which the API refuses anywhere
valid_text = st.text(
    alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=100
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=16,
)
FIELDS = [
    "runner",
    "progress",
    "message",
    "results",
    "reason",
    "test_case_id",
    "device_id",
    "measurements",
    "metric",
    "value",
    "unit",
    "error",
    "started_at",
    "finished_at",
]
# objects built from the field names the schemas know, so the generator gets past the top level
report_like = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=6)
    ),
    max_leaves=20,
)


@pytest.fixture
def new_run(client, lab):
    """A queued run on a device of its own, for each example."""
    count = iter(range(10_000))

    def start():
        device = client.post("/api/devices", json={"name": f"prop-{next(count)}"}).get_json()
        body = {
            "test_case_ids": [c["id"] for c in lab["cases"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [device["id"]],
        }
        response = client.post("/api/test-runs", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return start


def assert_documented(response):
    assert response.status_code in (200, 409, 422), (response.status_code, response.get_json())
    body = response.get_json()
    if response.status_code != 200:
        assert set(body) >= {"code", "message", "errors"}, body


@SETTINGS
@given(st.sampled_from(REPORTS), json_values | report_like)
def test_any_json_body_gets_a_documented_answer(new_run, report, what, body):
    run = new_run()
    assert_documented(report(run["id"], what, body))


def measurements(metrics):
    """What a runner measured: mostly the criteria's metrics, sometimes one nobody asked for."""
    return st.lists(
        st.fixed_dictionaries(
            {
                "metric": st.sampled_from([*metrics, "not-a-criterion"])
                | valid_text.filter(lambda text: text.strip()),
                "value": st.floats(allow_nan=False, allow_infinity=False),
            },
            optional={"unit": valid_text.map(lambda text: text[:10])},
        ),
        max_size=5,
        unique_by=lambda m: m["metric"].strip(),
    )


def results_for(run, data, subset):
    criteria = {c["id"]: c["criteria"] for c in run["test_cases"]}
    pairs = [(c["id"], d["id"]) for c in run["test_cases"] for d in run["devices"]]
    return [
        {
            "test_case_id": case,
            "device_id": device,
            "measurements": data.draw(measurements([c["metric"] for c in criteria[case]])),
        }
        for n, (case, device) in enumerate(pairs)
        if subset[n % len(subset)]
    ]


def judged(run, results, every_pair):
    """What devicelab keeps: per (case, device), one measurement per criterion of the case,
    with the value reported for that criterion's metric (or none), in the criterion's unit."""
    criteria = {c["id"]: c["criteria"] for c in run["test_cases"]}
    sent = {(r["test_case_id"], r["device_id"]): r["measurements"] for r in results}
    pairs = [(c["id"], d["id"]) for c in run["test_cases"] for d in run["devices"]]
    return {
        (case, device): sorted(
            (
                c["metric"],
                next(
                    (
                        m["value"]
                        for m in sent.get((case, device), [])
                        if m["metric"].strip() == c["metric"]
                    ),
                    None,
                ),
                c["unit"],
            )
            for c in criteria[case]
        )
        for case, device in pairs
        if every_pair or (case, device) in sent
    }


def as_stored(run):
    return {
        (r["test_case_id"], r["device_id"]): sorted(
            (m["metric"], m["value"], m["unit"]) for m in r["measurements"]
        )
        for r in run["results"]
    }


@SETTINGS
@given(
    st.data(),
    st.floats(min_value=0, max_value=1),
    valid_text,
    st.lists(st.booleans(), min_size=1, max_size=4),
)
def test_valid_progress_results_come_back_as_sent(new_run, report, data, fraction, text, subset):
    run = new_run()
    results = results_for(run, data, subset)
    response = report(
        run["id"], "progress", {"progress": fraction, "message": text, "results": results}
    )
    assert response.status_code == 200, response.get_json()
    stored = response.get_json()["run"]
    assert math.isclose(stored["progress"], fraction) and stored["progress_message"] == text
    assert as_stored(stored) == judged(run, results, every_pair=False)


@SETTINGS
@given(st.data(), st.lists(st.booleans(), min_size=1, max_size=4))
def test_a_valid_final_result_completes_the_run_once(new_run, report, client, data, subset):
    run = new_run()
    results = results_for(run, data, subset)
    first = report(run["id"], "result", {"results": results})
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["changed"] is True
    assert first.get_json()["released_device_ids"] == [d["id"] for d in run["devices"]]
    again = report(run["id"], "result", {"results": results})
    assert again.status_code == 200 and again.get_json()["changed"] is False
    stored = client.get(f"/api/test-runs/{run['id']}").get_json()
    assert stored["status"] == "completed"
    assert as_stored(stored) == judged(run, results, every_pair=True)  # missing: inconclusive
