"""The comparison rules (domain.comparison): changes, flaky sides, metric direction and spread,
firmware order, tracked regressions; with Hypothesis where the rules have properties."""

from __future__ import annotations

import itertools
import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.comparison import (
    FLAKY_WINDOW,
    CaseKey,
    Change,
    Direction,
    Measured,
    MetricSample,
    ResultSample,
    RunRef,
    SideVerdict,
    Summary,
    beyond_spread,
    change_between,
    combine,
    compare,
    direction_of,
    order_firmwares,
    summarise,
    summary_parts,
    track_regressions,
    version_key,
)

settings.load_profile("devicelab-unit")

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = CaseKey("case-1", "EM-340", "env-1")


def sample(n: int, verdict: str, value: float | None = None, firmware: str = "", key=KEY):
    measured = [Measured("voltage", value, "<=", 240.0, "V")] if value is not None else []
    return ResultSample(
        key, RunRef(f"run-{n:04d}", T0 + timedelta(hours=n)), verdict, measured, firmware
    )


def side(*verdicts: str, key=KEY) -> Summary:
    (summary,) = summarise(sample(n, v, key=key) for n, v in enumerate(verdicts))
    return summary


def metric(*values: float) -> MetricSample:
    return MetricSample(
        "voltage", len(values), sum(values), sum(v * v for v in values), "<=", 240.0, "V"
    )


# -- a side's verdict and the change -------------------------------------------------------


def test_a_side_is_flaky_when_its_newest_results_have_both_verdicts():
    assert side("pass", "fail", "pass").verdict is SideVerdict.FLAKY
    assert side("pass", "inconclusive").verdict is SideVerdict.PASS
    assert side("inconclusive").verdict is SideVerdict.INCONCLUSIVE


def test_only_the_newest_results_decide_a_side_older_ones_do_not():
    # a pass long ago, then FLAKY_WINDOW fails: the side fails, it is not flaky
    assert side("pass", *["fail"] * FLAKY_WINDOW).verdict is SideVerdict.FAIL
    assert side("pass", *["fail"] * (FLAKY_WINDOW - 1)).verdict is SideVerdict.FLAKY


@pytest.mark.parametrize(
    ("base", "target", "change"),
    [
        (("pass",), ("fail",), Change.REGRESSION),
        (("fail",), ("pass",), Change.FIX),
        (("pass",), ("pass",), Change.UNCHANGED),
        (("fail",), ("fail",), Change.UNCHANGED),
        (("pass",), ("pass", "fail"), Change.UNCHANGED),  # flaky is no regression by itself
        (("pass", "fail"), ("pass",), Change.UNCHANGED),
        (("inconclusive",), ("fail",), Change.UNCHANGED),
        ((), ("fail",), Change.NEW),
        (("pass",), (), Change.MISSING),
    ],
)
def test_the_change_from_base_to_target(base, target, change):
    assert (
        change_between(side(*base) if base else None, side(*target) if target else None) is change
    )


# -- metrics --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "base", "target", "direction"),
    [
        ("<=", 230.0, 220.0, Direction.BETTER),
        ("<", 230.0, 235.0, Direction.WORSE),
        (">=", 49.0, 49.8, Direction.BETTER),
        (">", 49.8, 49.0, Direction.WORSE),
        ("==", 238.0, 239.5, Direction.BETTER),  # closer to the threshold 240
        ("==", 239.5, 242.0, Direction.WORSE),
        ("==", 239.0, 241.0, Direction.SAME),  # as far on the other side
        ("!=", 1.0, 2.0, None),
        ("<=", 230.0, 230.0, Direction.SAME),
    ],
)
def test_the_direction_follows_the_criterion(condition, base, target, direction):
    assert direction_of(condition, 240.0, base, target) is direction


def test_beyond_the_spread_means_more_than_three_standard_deviations_apart():
    base = metric(230.0, 231.0, 229.0, 230.0)  # sd 0.816
    assert beyond_spread(base, metric(233.0, 233.0, 233.0)) is True  # 3.0 > 2.45
    assert beyond_spread(base, metric(232.0, 232.0, 232.0)) is False  # 2.0 < 2.45
    # the larger spread counts: a noisy target does not make a difference significant
    assert beyond_spread(base, metric(226.0, 233.0, 240.0)) is False


def test_too_few_samples_tell_nothing_about_the_spread():
    assert beyond_spread(metric(230.0, 230.0), metric(250.0, 250.0, 250.0)) is None
    # no spread on either side: any difference is beyond it
    assert beyond_spread(metric(230.0, 230.0, 230.0), metric(230.5, 230.5, 230.5)) is True


def test_the_standard_deviation_is_the_sample_one():
    values = [230.1, 229.7, 231.4, 230.0, 228.9]
    assert metric(*values).stddev == pytest.approx(statistics.stdev(values))
    assert metric(1.0).stddev is None


def test_a_comparison_shows_means_difference_and_direction_per_metric():
    base = summarise(sample(n, "pass", 230.0 + n % 2) for n in range(4))
    target = summarise(sample(10 + n, "fail", 245.0) for n in range(4))
    (row,) = compare(base, target)
    (voltage,) = row.metrics
    assert row.change is Change.REGRESSION
    assert voltage.base.mean == 230.5 and voltage.target.mean == 245.0
    assert voltage.difference == 14.5
    assert voltage.direction is Direction.WORSE and voltage.beyond_spread is True
    assert voltage.significantly_worse


def test_regressions_come_first_then_significantly_worse_metrics_then_fixes():
    keys = [CaseKey(f"case-{n}", "EM-340", "env") for n in range(4)]
    base = [*summarise(sample(n, "pass", 230.0, key=keys[0]) for n in range(3))]
    base += summarise(sample(n, "fail", 250.0, key=keys[1]) for n in range(3))
    base += summarise(sample(n, "pass", 230.0, key=keys[2]) for n in range(3))
    base += summarise(sample(n, "pass", 230.0, key=keys[3]) for n in range(3))
    target = [*summarise(sample(n, "pass", 230.0, key=keys[0]) for n in range(3))]
    target += summarise(sample(n, "pass", 230.0, key=keys[1]) for n in range(3))  # fix
    target += summarise(sample(n, "pass", 239.0, key=keys[2]) for n in range(3))  # worse
    target += summarise(sample(n, "fail", 250.0, key=keys[3]) for n in range(3))  # regression
    order = [r.key.test_case_id for r in compare(base, target)]
    assert order == ["case-3", "case-2", "case-1", "case-0"]


verdicts = st.lists(st.sampled_from(["pass", "fail", "inconclusive"]), max_size=14)
values = st.lists(st.floats(min_value=200, max_value=260), max_size=6)


@st.composite
def sides(draw):
    samples = []
    for n, key in enumerate(CaseKey(f"case-{k}", "EM-340", "env") for k in range(3)):
        for m, verdict in enumerate(draw(verdicts)):
            value = draw(st.one_of(st.none(), st.floats(min_value=200, max_value=260)))
            samples.append(sample(100 * n + m, verdict, value, key=key))
    return summarise(samples)


SWAPPED = {Change.REGRESSION: Change.FIX, Change.FIX: Change.REGRESSION, Change.NEW: Change.MISSING}
SWAPPED.update({v: k for k, v in SWAPPED.items()})
OPPOSITE = {Direction.BETTER: Direction.WORSE, Direction.WORSE: Direction.BETTER}


@given(sides(), sides())
def test_swapping_base_and_target_swaps_regressions_and_fixes(base, target):
    forward = {r.key: r for r in compare(base, target)}
    backward = {r.key: r for r in compare(target, base)}
    assert forward.keys() == backward.keys()
    for key, row in forward.items():
        back = backward[key]
        assert back.change is SWAPPED.get(row.change, row.change)
        assert back.flaky == row.flaky
        for there, here in zip(row.metrics, back.metrics, strict=True):
            assert there.beyond_spread == here.beyond_spread
            assert here.direction is OPPOSITE.get(there.direction, there.direction)
            if there.difference is not None:
                assert here.difference == pytest.approx(-there.difference)


@given(sides())
def test_a_side_compared_with_itself_changes_nothing(both):
    for row in compare(both, both):
        assert row.change is Change.UNCHANGED
        assert all(m.direction in (Direction.SAME, None) for m in row.metrics)
        assert all(m.beyond_spread in (False, None) for m in row.metrics)


# -- firmware order ------------------------------------------------------------------------


def test_semantic_versions_sort_by_their_numbers_not_as_text():
    seen = {"2.10.0": T0, "2.9.1": T0 + timedelta(days=1), "2.9.1-rc.2": T0, "2.9.1-rc.10": T0}
    assert order_firmwares(seen) == ["2.9.1-rc.2", "2.9.1-rc.10", "2.9.1", "2.10.0"]
    assert version_key("v4.2") == version_key("4.2.0")
    assert version_key("nightly-17") is None


def test_other_versions_keep_their_first_seen_order_between_the_releases():
    seen = {
        "4.1.0": T0,
        "nightly-a": T0 + timedelta(days=1),
        "4.0.0": T0 + timedelta(days=2),  # a late rebuild of an old release
        "nightly-b": T0 + timedelta(days=3),
        "4.2.0": T0 + timedelta(days=4),
    }
    assert order_firmwares(seen) == ["4.0.0", "nightly-a", "4.1.0", "nightly-b", "4.2.0"]


names = st.one_of(
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", *[st.integers(0, 12)] * 3),
    st.builds(lambda a, r: f"{a}.0.0-rc.{r}", st.integers(0, 3), st.integers(0, 9)),
    st.text("abcxyz-", min_size=1, max_size=5),
)


@given(st.dictionaries(names, st.integers(0, 1000), min_size=1, max_size=12), st.randoms())
def test_the_firmware_order_is_a_total_order_independent_of_how_it_is_asked(
    seen, rnd: random.Random
):
    first_seen = {v: T0 + timedelta(minutes=m) for v, m in seen.items()}
    shuffled = list(first_seen.items())
    rnd.shuffle(shuffled)
    ordered = order_firmwares(first_seen)
    assert ordered == order_firmwares(dict(shuffled))
    assert sorted(ordered) == sorted(first_seen)
    semantic = [v for v in ordered if version_key(v) is not None]
    assert [version_key(v) for v in semantic] == sorted(version_key(v) for v in semantic)
    others = [v for v in ordered if version_key(v) is None]
    assert others == sorted(others, key=lambda v: (first_seen[v], v))


# -- tracked regressions -------------------------------------------------------------------


def history(*per_firmware: tuple[str, tuple[str, ...]], key=KEY) -> list[Summary]:
    samples, n = [], 0
    for firmware, verdicts_on_it in per_firmware:
        for verdict in verdicts_on_it:
            samples.append(sample(n, verdict, firmware=firmware, key=key))
            n += 1
    return summarise(samples, by_firmware=True)


def test_a_regression_opens_when_a_newer_firmware_fails_and_closes_when_one_passes_again():
    found, flaky = track_regressions(
        history(("1.0.0", ("pass", "pass")), ("1.1.0", ("fail", "fail")), ("1.2.0", ("fail",)))
    )
    (regression,) = found
    assert regression.open and not flaky
    assert regression.last_passing.firmware == "1.0.0"
    assert regression.last_passing.run.run_id == "run-0001"  # its newest pass
    assert regression.first_failing.firmware == "1.1.0"
    assert regression.first_failing.run.run_id == "run-0002"  # its oldest fail

    (closed,), _ = track_regressions(
        history(
            ("1.0.0", ("pass",)), ("1.1.0", ("fail",)), ("1.2.0", ("fail",)), ("1.3.0", ("pass",))
        )
    )
    assert not closed.open and closed.fixed_by.firmware == "1.3.0"


def test_the_firmware_order_not_the_time_order_decides():
    # 1.1.0 ran first (and failed), 1.0.0 was tested later (and passed): 1.0.0 -> 1.1.0 regressed
    (regression,), _ = track_regressions(history(("1.1.0", ("fail",)), ("1.0.0", ("pass",))))
    assert (regression.last_passing.firmware, regression.first_failing.firmware) == (
        "1.0.0",
        "1.1.0",
    )


def test_a_flaky_firmware_opens_no_regression_and_is_reported_as_flaky():
    found, flaky = track_regressions(history(("1.0.0", ("pass",)), ("1.1.0", ("pass", "fail"))))
    assert found == []
    assert [(s.key, s.firmware) for s in flaky] == [(KEY, "1.1.0")]


def test_a_flaky_firmware_in_between_neither_opens_nor_closes():
    (regression,), _ = track_regressions(
        history(("1.0.0", ("pass",)), ("1.1.0", ("fail", "pass")), ("1.2.0", ("fail",)))
    )
    assert (regression.last_passing.firmware, regression.first_failing.firmware) == (
        "1.0.0",
        "1.2.0",
    )
    assert regression.open and not regression.flaky


def test_failing_from_the_start_is_no_regression():
    found, _ = track_regressions(history(("1.0.0", ("fail",)), ("1.1.0", ("fail",))))
    assert found == []


@given(st.lists(st.sampled_from(["pass", "fail", "flaky", "inconclusive"]), max_size=12))
def test_regressions_alternate_with_fixes_along_the_firmware_order(outcomes):
    spelled = {
        "pass": ("pass",),
        "fail": ("fail",),
        "flaky": ("pass", "fail"),
        "inconclusive": ("inconclusive",),
    }
    found, _ = track_regressions(
        history(*((f"1.{n}.0", spelled[o]) for n, o in enumerate(outcomes)))
    )
    conclusive = [o for o in outcomes if o in ("pass", "fail")]
    # one regression per pass -> fail step of the conclusive outcomes, all closed but the last
    steps = sum(1 for a, b in itertools.pairwise(conclusive) if (a, b) == ("pass", "fail"))
    assert len(found) == steps
    assert all(not r.open for r in found[:-1])
    assert all(r.open == (conclusive[-1] == "fail") for r in found[-1:])


# -- marginal: a pass with a warning --------------------------------------------------------


def test_a_marginal_result_counts_as_passed_and_marks_its_side_marginal():
    summary = side("pass", "marginal", "inconclusive")
    assert (summary.passed, summary.failed, summary.inconclusive) == (2, 0, 1)
    assert summary.verdict is SideVerdict.MARGINAL
    assert side("marginal", "fail").verdict is SideVerdict.FLAKY
    assert summary.newest_pass.run_id == "run-0001"


@pytest.mark.parametrize(
    ("base", "target", "change"),
    [
        (("pass",), ("marginal",), Change.UNCHANGED),
        (("marginal",), ("pass",), Change.UNCHANGED),
        (("marginal",), ("fail",), Change.REGRESSION),
        (("fail",), ("marginal",), Change.FIX),
    ],
)
def test_pass_to_marginal_is_no_regression_but_marginal_to_fail_is(base, target, change):
    assert change_between(side(*base), side(*target)) is change


def test_a_marginal_firmware_closes_a_regression_and_a_failing_one_after_it_opens_one():
    (regression,), _ = track_regressions(
        history(("1.0.0", ("marginal",)), ("1.1.0", ("fail",)), ("1.2.0", ("marginal",)))
    )
    assert regression.last_passing.firmware == "1.0.0"
    assert not regression.open and regression.fixed_by.firmware == "1.2.0"


# -- parts of a side (a store's per-day sums) combine into the summary of all ----------------

KEYS = [CaseKey("c1", "EM-340", "e1"), CaseKey("c2", "EM-340", "e1")]


@st.composite
def stored_results(draw):
    """Results of a few keys, runs and devices, with ties in finish time and run id, values
    that are whole numbers (so sums in any order are exact) or missing, and criteria that
    change from result to result."""
    found = []
    for n in range(draw(st.integers(0, 30))):
        key = draw(st.sampled_from(KEYS))
        measured = [
            Measured(
                draw(st.sampled_from(["voltage", "current"])),
                draw(st.one_of(st.none(), st.integers(200, 260).map(float))),
                draw(st.sampled_from(["<=", ">="])),
                draw(st.sampled_from([240.0, 250.0])),
                draw(st.sampled_from(["V", "mV"])),
            )
            for _ in range(draw(st.integers(0, 2)))
        ]
        found.append(
            ResultSample(
                key,
                RunRef(
                    f"run-{draw(st.integers(0, 5))}",
                    T0 + timedelta(minutes=draw(st.integers(0, 4))),
                ),
                draw(st.sampled_from(["pass", "fail", "inconclusive", "marginal"])),
                measured,
                device_id=f"dev-{n}",
            )
        )
    return found


@given(stored_results(), st.lists(st.integers(0, 3), min_size=30, max_size=30))
def test_parts_combine_into_the_summary_of_all_their_results(results, part_of):
    parts = [
        part
        for n in range(4)
        for part in summary_parts(r for i, r in enumerate(results) if part_of[i] == n)
    ]
    assert combine(parts) == summarise(results)


def test_the_newest_results_of_a_combined_side_may_come_from_any_part():
    # a run created on one day may finish after the runs created the next day
    late = sample(9, "fail")
    early = [sample(n, "pass") for n in range(9)]
    parts = summary_parts([late]) + summary_parts(early)
    assert combine(parts)[0].verdict is SideVerdict.FLAKY
    assert combine(summary_parts(early))[0].verdict is SideVerdict.PASS
