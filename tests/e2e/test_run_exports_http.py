"""Results out over HTTP, on every backend: a run as JUnit XML (valid against the common JUnit
schema, tests/e2e/junit.xsd, checked by lxml), and the run history as streamed CSV with the
run list's filters."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from lxml import etree

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).with_name("junit.xsd"))))


def valid_junit(raw: bytes) -> etree._Element:
    document = etree.fromstring(raw)
    if not SCHEMA.validate(document):
        raise AssertionError(f"not valid JUnit XML: {SCHEMA.error_log}\n{raw.decode()}")
    return document


def start(client, lab, devices, cases=(0, 1), **body):
    answer = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][n]["id"] for n in cases],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][n]["id"] for n in devices],
            **body,
        },
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def result(case, device, **values):
    return {
        "test_case_id": case["id"],
        "device_id": device["id"],
        "measurements": [{"metric": k, "value": v} for k, v in values.items()],
        "started_at": "2026-03-01T08:00:00+00:00",
        "finished_at": "2026-03-01T08:00:02.5+00:00",
    }


def complete(report, lab, run, voltages, power=1.0):
    """Each device of `run` measures its voltage (<= 240 passes) and `power` (< 2 passes)."""
    voltage_case, power_case = lab["cases"]
    by_id = {d["id"]: d for d in lab["devices"]}
    results = []
    for device, voltage in zip(run["devices"], voltages, strict=True):
        results.append(result(voltage_case, by_id[device["id"]], voltage=voltage))
        results.append(result(power_case, by_id[device["id"]], power=power))
    answer = report(run["id"], "result", {"results": results})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["run"]


def test_a_failed_run_as_junit_names_the_failed_criterion_with_value_and_threshold(
    client, lab, report
):
    run = start(client, lab, [0, 1], parameters={"load": 3, "mode": "eco"})
    complete(report, lab, run, voltages=[230, 251.5])
    answer = client.get(f"/api/test-runs/{run['id']}/junit.xml")
    assert answer.status_code == 200
    assert answer.mimetype == "application/xml"
    assert "attachment" in answer.headers["Content-Disposition"]
    document = valid_junit(answer.data)

    assert document.get("tests") == "4" and document.get("failures") == "1"
    suites = document.findall("testsuite")
    assert [s.get("name") for s in suites] == ["meter-0", "meter-1"]
    properties = {p.get("name"): p.get("value") for p in suites[1].iter("property")}
    assert properties["environment"] == "bench" and properties["environment.temp"] == "23"
    assert properties["firmware"] == "1.1" and properties["run.verdict"] == "fail"
    assert properties["parameter.load"] == "3" and properties["parameter.mode"] == "eco"
    assert suites[0].find("testcase/failure") is None
    failure = suites[1].find("testcase[@name='voltage']/failure")
    assert failure.get("message") == "voltage = 251.5 V, expected <= 240 V"
    assert suites[1].find("testcase[@name='voltage']").get("time") == "2.500"
    assert suites[1].find("testcase[@name='standby']/failure") is None


def test_junit_of_runs_without_results_errors_once_ended_and_skips_while_running(client, lab):
    running = start(client, lab, [0])
    document = valid_junit(client.get(f"/api/test-runs/{running['id']}/junit.xml").data)
    assert document.get("skipped") == "2" and document.get("errors") == "0"

    client.post(f"/api/test-runs/{running['id']}/cancel", json={"reason": "flash failed"})
    document = valid_junit(client.get(f"/api/test-runs/{running['id']}/junit.xml").data)
    assert document.get("errors") == "2" and document.get("skipped") == "0"
    error = document.find("testsuite/testcase/error")
    assert error.get("type") == "aborted" and "flash failed" in error.get("message")


def test_junit_carries_text_xml_cannot_hold(client, lab, report):
    run = start(client, lab, [0], cases=(0,))
    odd = {**result(lab["cases"][0], lab["devices"][0], voltage=1), "message": "bell\x07 <&>"}
    assert report(run["id"], "result", {"results": [odd]}).status_code == 200
    document = valid_junit(client.get(f"/api/test-runs/{run['id']}/junit.xml").data)
    assert document.find("testsuite/testcase/system-out").text == "bell\ufffd <&>"


def test_junit_of_an_unknown_run_is_404(client):
    answer = client.get("/api/test-runs/no-such-run/junit.xml")
    assert answer.status_code == 404 and answer.get_json()["code"] == "not_found"


def read_csv(answer) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.data[:500]
    assert answer.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))


def test_the_history_as_csv_has_a_row_per_run_device_and_criterion(client, lab, report):
    failed = start(client, lab, [0, 1])
    complete(report, lab, failed, voltages=[230, 250])
    waiting = start(client, lab, [0], when_busy="queue")  # meter-0 is free again: it starts
    client.post(f"/api/test-runs/{waiting['id']}/cancel", json={})

    answer = client.get("/api/test-runs.csv")
    assert answer.is_streamed
    rows = read_csv(answer)
    assert [r["run_id"] for r in rows] == [waiting["id"]] * 2 + [failed["id"]] * 4
    voltage_of_meter_1 = next(
        r for r in rows if r["run_id"] == failed["id"] and r["device"] == "meter-1"
    )
    assert voltage_of_meter_1 == {
        **voltage_of_meter_1,
        "metric": "voltage",
        "condition": "<=",
        "threshold": "240.0",
        "unit": "V",
        "value": "250.0",
        "passed": "false",
        "case_verdict": "fail",
        "run_verdict": "fail",
        "environment": "bench",
        "firmware": "1.1",
    }
    aborted = rows[0]
    assert aborted["run_status"] == "aborted" and aborted["value"] == "" and aborted["passed"] == ""

    only_failed = read_csv(client.get("/api/test-runs.csv?verdict=fail"))
    assert {r["run_id"] for r in only_failed} == {failed["id"]}
    on_meter_1 = read_csv(client.get(f"/api/test-runs.csv?device_id={lab['devices'][1]['id']}"))
    assert {r["run_id"] for r in on_meter_1} == {failed["id"]}


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_defused(client, lab):
    client.patch(f"/api/devices/{lab['devices'][0]['id']}", json={"name": "=HYPERLINK(1)"})
    start(client, lab, [0])
    rows = read_csv(client.get("/api/test-runs.csv"))
    assert {r["device"] for r in rows} == {"'=HYPERLINK(1)"}


@pytest.mark.parametrize(
    "query",
    ["status=lost", "verdict=maybe", "from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z"],
)
def test_a_bad_csv_filter_is_a_422_before_anything_is_streamed(client, query):
    answer = client.get(f"/api/test-runs.csv?{query}")
    assert answer.status_code == 422, answer.data
    assert answer.get_json()["code"] in {"validation_error", "invalid_value"}


def test_exports_need_a_signed_in_reader(anonymous, signed_in):
    assert anonymous.get("/api/test-runs.csv").status_code == 401
    viewer = signed_in("viewer")
    assert viewer.get("/api/test-runs.csv").status_code == 200
