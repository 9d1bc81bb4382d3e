"""Comparison, regression tracking and firmware versions through the use cases, on the
in-memory store (the SQL store is held to the same answers in tests/integration)."""

from __future__ import annotations

import pytest

from application.errors import NotFound
from application.use_cases.comparison import (
    CompareRequest,
    CompareResults,
    ListFirmwareVersions,
    ListRegressions,
    RegressionsRequest,
)
from domain.comparison import Change, Direction, SideVerdict
from domain.errors import InvalidValue
from tests.support.firmware_history import FirmwareHistory


@pytest.fixture
def history(lab):
    return FirmwareHistory(lab)


def test_a_firmware_that_fails_where_the_previous_one_passed_is_a_regression(lab, history):
    for voltage in (230.0, 231.0, 229.0):
        history.run("4.2.0", voltage, current=10.0)
    for voltage in (245.0, 246.0, 244.0):
        history.run("4.2.1", voltage, current=10.0)
    comparison = CompareResults(lab.new_uow)(CompareRequest("4.2.0", "4.2.1"))
    assert (comparison.base, comparison.target) == ("firmware 4.2.0", "firmware 4.2.1")
    first, second = comparison.rows
    assert first.key.test_case_id == history.voltage.id and first.change is Change.REGRESSION
    assert (first.base.verdict, first.target.verdict) == (SideVerdict.PASS, SideVerdict.FAIL)
    (voltage,) = first.metrics
    assert (voltage.base.mean, voltage.target.mean, voltage.difference) == (230.0, 245.0, 15.0)
    assert voltage.direction is Direction.WORSE and voltage.beyond_spread is True
    assert second.key.test_case_id == history.current.id and second.change is Change.UNCHANGED
    assert comparison.names.test_cases[history.voltage.id] == "voltage"
    assert comparison.names.environments[history.environment.id] == "bench A"


def test_sides_are_split_by_model_and_narrowed_by_the_filters(lab, history):
    history.run("1.0.0", 230.0)
    history.run("1.0.0", 250.0, device=history.other)
    history.run("1.1.0", 250.0)
    history.run("1.1.0", 230.0, device=history.other)
    rows = CompareResults(lab.new_uow)(CompareRequest("1.0.0", "1.1.0")).rows
    assert {(r.key.model, r.change) for r in rows} == {
        ("EM-340", Change.REGRESSION),
        ("EM-24", Change.FIX),
    }
    only = CompareResults(lab.new_uow)(CompareRequest("1.0.0", "1.1.0", model="EM-24")).rows
    assert [(r.key.model, r.change) for r in only] == [("EM-24", Change.FIX)]


def test_two_runs_can_be_compared(lab, history):
    before = history.run("1.0.0", 230.0)
    after = history.run("1.0.0", 250.0)
    (row,) = CompareResults(lab.new_uow)(CompareRequest(base_run=before, target_run=after)).rows
    assert row.change is Change.REGRESSION
    assert row.base.newest.run_id == before and row.target.newest.run_id == after


def test_a_case_only_on_one_side_is_new_or_missing(lab, history):
    history.run("1.0.0", 230.0)
    history.run("1.1.0", 230.0, current=10.0)
    changes = {
        r.key.test_case_id: r.change
        for r in CompareResults(lab.new_uow)(CompareRequest("1.0.0", "1.1.0")).rows
    }
    assert changes == {history.voltage.id: Change.UNCHANGED, history.current.id: Change.NEW}


def test_a_date_window_narrows_both_sides(lab, history):
    history.run("1.0.0", 250.0)
    since = lab.clock.now()
    history.run("1.0.0", 230.0)
    history.run("1.1.0", 230.0)
    everything = CompareResults(lab.new_uow)(CompareRequest("1.0.0", "1.1.0")).rows
    window = CompareResults(lab.new_uow)(CompareRequest("1.0.0", "1.1.0", created_from=since)).rows
    assert everything[0].base.verdict is SideVerdict.FLAKY
    assert window[0].base.verdict is SideVerdict.PASS and window[0].base.results == 1


@pytest.mark.parametrize(
    "request_",
    [
        CompareRequest(),
        CompareRequest("1.0.0"),
        CompareRequest("1.0.0", "1.1.0", base_run="x"),
    ],
)
def test_each_side_is_one_firmware_or_one_run(lab, request_):
    with pytest.raises(InvalidValue):
        CompareResults(lab.new_uow)(request_)


def test_an_unknown_run_is_not_found(lab, history):
    run = history.run("1.0.0")
    with pytest.raises(NotFound):
        CompareResults(lab.new_uow)(CompareRequest(base_run=run, target_run="no-such-run"))


def test_regressions_are_tracked_along_the_firmware_order_until_fixed(lab, history):
    history.run("1.0.0", 230.0)
    last_pass = history.run("1.0.0", 230.0)
    first_fail = history.run("1.1.0", 250.0)
    history.run("1.1.0", 250.0)
    history.run("1.2.0", 250.0)
    list_regressions = ListRegressions(lab.new_uow)
    (regression,) = list_regressions(RegressionsRequest()).regressions
    assert regression.open
    assert (regression.last_passing.firmware, regression.last_passing.run.run_id) == (
        "1.0.0",
        last_pass,
    )
    assert (regression.first_failing.firmware, regression.first_failing.run.run_id) == (
        "1.1.0",
        first_fail,
    )
    fixed = history.run("1.3.0", 230.0)
    (closed,) = list_regressions(RegressionsRequest()).regressions
    assert not closed.open and closed.fixed_by.run.run_id == fixed
    assert list_regressions(RegressionsRequest(open=True)).regressions == []


def test_a_flaky_case_opens_no_regression_and_is_listed_as_flaky(lab, history):
    history.run("1.0.0", 230.0)
    history.run("1.1.0", 250.0)
    history.run("1.1.0", 230.0)
    found = ListRegressions(lab.new_uow)(RegressionsRequest())
    assert found.regressions == []
    assert [(s.key.test_case_id, s.firmware) for s in found.flaky] == [
        (history.voltage.id, "1.1.0")
    ]


def test_firmware_versions_are_listed_in_version_order(lab, history):
    history.run("1.10.0")
    history.run("1.9.0")
    history.run("1.9.0", device=history.spare)
    versions = ListFirmwareVersions(lab.new_uow)()
    assert [(f.version, f.results) for f in versions] == [("1.9.0", 2), ("1.10.0", 1)]
