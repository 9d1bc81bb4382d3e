"""Criteria and measurements in SQL (both backends): the new kinds, bands, statistics, reasons
and series round-trip; rows written before them (plain op/threshold criteria, measurements
without outcome keys) still load, so no migration was needed."""

from __future__ import annotations

import json

import sqlalchemy as sa

from application.use_cases.catalog import CriterionInput
from domain.test_cases import Condition, MarginalBand, Statistic
from domain.test_runs import Observation, ResultReport, Verdict


def test_range_criteria_and_series_round_trip(lab):
    device = lab.add_device("meter-1")
    case = lab.add_test_case(
        "window",
        criteria=[
            CriterionInput(
                "voltage", "between", min=207, max=253, unit="V", of="max", marginal={"min": 250}
            ),
            CriterionInput("current", "within_percent", nominal=10, percent=5, unit="A"),
        ],
    )
    run = lab.start([device], [case], lab.add_environment())
    samples = ((0.0, 230.0), (1.5, 251.0), (3.0, 240.0))
    lab.record_result(
        run.id,
        [
            ResultReport(
                case.id,
                device.id,
                (
                    Observation("voltage", unit="V", samples=samples),
                    Observation("current", 1, "mA"),
                ),
            )
        ],
    )
    loaded = lab.get_test_run(run.id)
    between, within = loaded.test_cases[0].criteria
    assert (between.condition, between.of, between.marginal) == (
        Condition.BETWEEN,
        Statistic.MAX,
        MarginalBand(min=250.0),
    )
    assert (within.nominal, within.percent) == (10.0, 5.0)
    voltage, current = loaded.results[(case.id, device.id)].measurements
    assert (voltage.value, voltage.marginal, voltage.samples) == (251.0, True, samples)
    assert current.reason == "unit mA differs from criterion unit A"
    assert loaded.verdict is Verdict.INCONCLUSIVE


def test_rows_written_before_the_new_kinds_still_load(lab):
    device = lab.add_device("meter-1")
    case = lab.add_test_case("plain", criteria=[("voltage", "<=", 240.0)])
    run = lab.start([device], [case], lab.add_environment())
    lab.record_result(run.id, [ResultReport(case.id, device.id, (Observation("voltage", 230),))])
    old_measurement = {
        "metric": "voltage",
        "condition": "<=",
        "threshold": 240.0,
        "unit": "",
        "value": 230.0,
        "passed": True,
    }
    with lab.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE test_run_results SET measurements = :m"),
            {"m": json.dumps([old_measurement])},
        )
    loaded = lab.get_test_run(run.id)
    (measurement,) = loaded.results[(case.id, device.id)].measurements
    assert (measurement.passed, measurement.marginal, measurement.reason) == (True, False, "")
    assert measurement.expected == "<= 240"
    assert measurement.samples == () and measurement.of == "final"
