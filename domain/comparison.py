"""Comparing results across firmware versions: what changed, what regressed, what is flaky.

Results are grouped per test case x device model x environment (a `CaseKey`). One side of a
comparison (a firmware version, a run) is summarised per key as a `Summary`: counts of its
verdicts, the verdicts of its newest `FLAKY_WINDOW` results, and per metric the count, sum and
sum of squares of the measured values: sums, so that a store can keep them up to date run by
run (the SQL store does); `summarise` makes them from the results themselves (the in-memory
store, and the SQL store for one run or a date window).

The rules, all pure:

- Results are ordered by when they came: their run's finish time (then run id, device id).
- A result that is **marginal** (a pass with a warning) counts as passed everywhere here.
- A side's verdict is what its newest `FLAKY_WINDOW` (10) results of the key say: both pass
  and fail among them → **flaky**; otherwise fail, **marginal** (passed, some of them only
  marginally) or pass; only inconclusive ones → inconclusive. Older results count for the
  metric means, not the verdict.
- The change from base to target: **regression** (pass or marginal → fail), **fix** (fail →
  pass or marginal), pass → marginal (and back) is unchanged: both verdicts are shown,
  **new** (no base results), **missing** (no target results), otherwise **unchanged**
  (a flaky side is never a regression or a fix by itself).
- A metric's difference is target mean - base mean; its direction follows the criterion:
  for `<` / `<=` lower is better, for `>` / `>=` higher is better, for `==` closer to the
  threshold is better, for `!=` and the ranges (`between`, `within_percent`) there is none.
- A difference is **beyond the run-to-run spread** when both sides have at least
  `MIN_SAMPLES` (3) values and |difference| > `SPREAD_SIGMAS` (3) x the larger of the two
  sides' sample standard deviations (with both spreads 0, any difference is beyond). Taking
  the larger spread keeps the rule symmetric: swapping the sides does not change it.

Firmware versions are ordered semantic-version-aware (`order_firmwares`): versions that read as
`[v]N(.N)*[-prerelease][+build]` are ordered by their numbers (trailing zeros do not count,
a pre-release comes before its release, pre-release parts compare as in SemVer 2.0); the
others by the time they were first seen in a run. The versions that read as semantic versions
keep the places they take in first-seen order and are sorted among themselves there, so a lab
that names its builds "nightly-…" still gets them in time order between its releases.

A **regression** is tracked per key along that order (`track_regressions`): it opens on the
first firmware whose verdict is fail after one whose verdict was pass, and closes on the next
firmware that passes again; flaky and inconclusive firmware versions neither open nor close
one."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

FLAKY_WINDOW = 10
MIN_SAMPLES = 3
SPREAD_SIGMAS = 3.0
PASS, FAIL, INCONCLUSIVE, MARGINAL = "pass", "fail", "inconclusive", "marginal"
PASSED = (PASS, MARGINAL)  # a marginal result is a pass with a warning, never a failure


class SideVerdict(enum.StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"  # passed, and some of its newest results only marginally
    FAIL = "fail"
    FLAKY = "flaky"
    INCONCLUSIVE = "inconclusive"


class Change(enum.StrEnum):
    REGRESSION = "regression"
    FIX = "fix"
    UNCHANGED = "unchanged"
    NEW = "new"
    MISSING = "missing"


class Direction(enum.StrEnum):
    BETTER = "better"
    WORSE = "worse"
    SAME = "same"


@dataclass(frozen=True, order=True)
class CaseKey:
    test_case_id: str
    model: str
    environment_id: str


@dataclass(frozen=True)
class MetricSample:
    """The values one side measured for one metric, as sums (so a database can add them up),
    with the criterion they were judged against (the newest one seen)."""

    metric: str
    count: int
    total: float
    total_squares: float
    condition: str = ""
    threshold: float | None = None
    unit: str = ""

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def stddev(self) -> float | None:
        """The sample standard deviation (n - 1); None below two values."""
        if self.count < 2:
            return None
        mean = self.total / self.count
        variance = (self.total_squares - self.count * mean * mean) / (self.count - 1)
        return math.sqrt(max(variance, 0.0))  # rounding can take an exact 0 just below


@dataclass(frozen=True)
class RunRef:
    """A run and when its results came (it finished): results are ordered by that."""

    run_id: str
    at: datetime


@dataclass(frozen=True)
class Summary:
    """One side's results of one key (on one firmware version, for regression tracking)."""

    key: CaseKey
    passed: int = 0
    failed: int = 0
    inconclusive: int = 0
    recent_passed: int = 0  # among the newest FLAKY_WINDOW results (marginal ones included)
    recent_failed: int = 0
    recent_marginal: int = 0
    metrics: Mapping[str, MetricSample] = field(default_factory=dict)
    firmware: str = ""
    oldest: RunRef | None = None  # the run of the oldest result
    newest: RunRef | None = None  # the run of the newest result
    newest_pass: RunRef | None = None
    oldest_pass: RunRef | None = None
    oldest_fail: RunRef | None = None

    @property
    def results(self) -> int:
        return self.passed + self.failed + self.inconclusive

    @property
    def first_seen(self) -> datetime | None:
        return self.oldest.at if self.oldest else None

    @property
    def verdict(self) -> SideVerdict:
        if self.recent_passed and self.recent_failed:
            return SideVerdict.FLAKY
        if self.recent_failed:
            return SideVerdict.FAIL
        if self.recent_marginal:
            return SideVerdict.MARGINAL
        if self.recent_passed:
            return SideVerdict.PASS
        return SideVerdict.INCONCLUSIVE


@dataclass(frozen=True)
class Measured:
    """A measurement as the run stored it (the criterion it was judged against with it)."""

    metric: str
    value: float | None
    condition: str
    threshold: float
    unit: str = ""


@dataclass(frozen=True)
class ResultSample:
    """One stored result, as `summarise` reads it."""

    key: CaseKey
    run: RunRef
    verdict: str
    measurements: Sequence[Measured] = ()
    firmware: str = ""
    device_id: str = ""  # orders the results of one run among themselves


def metric_label(metric: str, condition: str) -> str:
    """What a side's metrics are keyed by: a case may judge one metric by two criteria
    (e.g. `voltage >= 207` and `voltage <= 253`), each compared on its own."""
    return f"{metric} {condition}"


def summarise(samples: Iterable[ResultSample], by_firmware: bool = False) -> list[Summary]:
    """The summaries of the results, per key (and per firmware with `by_firmware`)."""
    groups: dict[tuple[CaseKey, str], list[ResultSample]] = {}
    for sample in samples:
        groups.setdefault((sample.key, sample.firmware if by_firmware else ""), []).append(sample)
    return [_summary(key, firmware, rows) for (key, firmware), rows in sorted(groups.items())]


def _summary(key: CaseKey, firmware: str, rows: list[ResultSample]) -> Summary:
    rows = sorted(rows, key=_order, reverse=True)
    recent = [s.verdict for s in rows[:FLAKY_WINDOW]]
    passes = [s.run for s in rows if s.verdict in PASSED]
    fails = [s.run for s in rows if s.verdict == FAIL]
    metrics: dict[str, MetricSample] = {}
    for sample in reversed(rows):  # oldest first: the newest criterion is the one kept
        for m in sample.measurements:
            label = metric_label(m.metric, m.condition)
            known = metrics.get(label, MetricSample(m.metric, 0, 0.0, 0.0))
            if m.value is None:
                metrics[label] = replace(
                    known, condition=m.condition, threshold=m.threshold, unit=m.unit
                )
                continue
            metrics[label] = MetricSample(
                m.metric,
                known.count + 1,
                known.total + m.value,
                known.total_squares + m.value * m.value,
                m.condition,
                m.threshold,
                m.unit,
            )
    return Summary(
        key=key,
        passed=len(passes),
        failed=len(fails),
        inconclusive=len(rows) - len(passes) - len(fails),
        recent_passed=recent.count(PASS) + recent.count(MARGINAL),
        recent_failed=recent.count(FAIL),
        recent_marginal=recent.count(MARGINAL),
        metrics=metrics,
        firmware=firmware,
        oldest=rows[-1].run,
        newest=rows[0].run,
        newest_pass=passes[0] if passes else None,
        oldest_pass=passes[-1] if passes else None,
        oldest_fail=fails[-1] if fails else None,
    )


# -- parts of a side: summaries that can be combined ----------------------------------------

ResultOrder = tuple[datetime, str, str]  # (finish time, run id, device id): results' order


@dataclass(frozen=True)
class RecentResult:
    order: ResultOrder
    verdict: str


@dataclass(frozen=True)
class SummaryPart:
    """The summary of some of one key's results (a store keeps one per day), with what
    `combine` needs to make the summary of several disjoint parts exactly as `summarise` makes
    it of all their results: the part's newest FLAKY_WINDOW results themselves (the newest of
    the whole are among the parts' newest), and per metric label the result whose criterion
    the part's MetricSample carries (the newest of those wins)."""

    summary: Summary
    recent: tuple[RecentResult, ...] = ()  # newest first
    criteria_from: Mapping[str, ResultOrder] = field(default_factory=dict)


def summary_parts(samples: Iterable[ResultSample]) -> list[SummaryPart]:
    """`summarise` (one side, not by firmware), keeping what `combine` needs."""
    groups: dict[CaseKey, list[ResultSample]] = {}
    for sample in samples:
        groups.setdefault(sample.key, []).append(sample)
    parts = []
    for key, rows in sorted(groups.items()):
        ordered = sorted(rows, key=_order, reverse=True)
        criteria_from: dict[str, ResultOrder] = {}
        for sample in ordered:
            for m in sample.measurements:
                criteria_from.setdefault(metric_label(m.metric, m.condition), _order(sample))
        recent = tuple(RecentResult(_order(s), s.verdict) for s in ordered[:FLAKY_WINDOW])
        parts.append(SummaryPart(_summary(key, "", rows), recent, criteria_from))
    return parts


def combine(parts: Iterable[SummaryPart]) -> list[Summary]:
    """One summary per key of disjoint parts of a side's results (see `SummaryPart`)."""
    per_key: dict[CaseKey, list[SummaryPart]] = {}
    for part in parts:
        per_key.setdefault(part.summary.key, []).append(part)
    return [_combined(key, found) for key, found in sorted(per_key.items())]


def _combined(key: CaseKey, parts: list[SummaryPart]) -> Summary:
    summaries = [p.summary for p in parts]
    newest = sorted((r for p in parts for r in p.recent), key=lambda r: r.order, reverse=True)
    recent = [r.verdict for r in newest[:FLAKY_WINDOW]]
    metrics: dict[str, MetricSample] = {}
    criterion_order: dict[str, ResultOrder] = {}
    for part in parts:
        for label, sample in part.summary.metrics.items():
            known = metrics.get(label)
            if known is not None and criterion_order[label] > part.criteria_from[label]:
                sample, known = known, sample  # the criterion kept is the newer one's
            if known is not None:
                sample = replace(
                    sample,
                    count=known.count + sample.count,
                    total=known.total + sample.total,
                    total_squares=known.total_squares + sample.total_squares,
                )
            metrics[label] = sample
            criterion_order[label] = max(
                part.criteria_from[label], criterion_order.get(label, part.criteria_from[label])
            )

    def pick(name: str, newest: bool) -> RunRef | None:
        refs = [r for r in (getattr(s, name) for s in summaries) if r is not None]
        if not refs:
            return None
        choose = max if newest else min
        return choose(refs, key=lambda r: (r.at, r.run_id))

    return Summary(
        key=key,
        passed=sum(s.passed for s in summaries),
        failed=sum(s.failed for s in summaries),
        inconclusive=sum(s.inconclusive for s in summaries),
        recent_passed=recent.count(PASS) + recent.count(MARGINAL),
        recent_failed=recent.count(FAIL),
        recent_marginal=recent.count(MARGINAL),
        metrics=dict(sorted(metrics.items())),
        firmware=summaries[0].firmware,
        oldest=pick("oldest", newest=False),
        newest=pick("newest", newest=True),
        newest_pass=pick("newest_pass", newest=True),
        oldest_pass=pick("oldest_pass", newest=False),
        oldest_fail=pick("oldest_fail", newest=False),
    )


def _order(sample: ResultSample) -> ResultOrder:
    return (sample.run.at, sample.run.run_id, sample.device_id)


# -- comparing two sides ---------------------------------------------------------------------


def change_between(base: Summary | None, target: Summary | None) -> Change:
    if base is None or not base.results:
        return Change.NEW
    if target is None or not target.results:
        return Change.MISSING
    passed = (SideVerdict.PASS, SideVerdict.MARGINAL)
    if base.verdict in passed and target.verdict is SideVerdict.FAIL:
        return Change.REGRESSION
    if base.verdict is SideVerdict.FAIL and target.verdict in passed:
        return Change.FIX
    return Change.UNCHANGED


def direction_of(
    condition: str, threshold: float | None, base: float, target: float
) -> Direction | None:
    """Is `target` better or worse than `base` for a criterion `value condition threshold`?"""
    if target == base:
        return Direction.SAME
    if condition in ("<", "<="):
        better = target < base
    elif condition in (">", ">="):
        better = target > base
    elif condition == "==" and threshold is not None:
        if abs(target - threshold) == abs(base - threshold):
            return Direction.SAME
        better = abs(target - threshold) < abs(base - threshold)
    else:
        return None
    return Direction.BETTER if better else Direction.WORSE


def beyond_spread(base: MetricSample, target: MetricSample) -> bool | None:
    """|target mean - base mean| > SPREAD_SIGMAS x the larger sample standard deviation,
    with at least MIN_SAMPLES values on each side (None: too few to tell)."""
    if base.count < MIN_SAMPLES or target.count < MIN_SAMPLES:
        return None
    difference = abs(target.total / target.count - base.total / base.count)
    spread = max(base.stddev or 0.0, target.stddev or 0.0)
    return difference > SPREAD_SIGMAS * spread


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    unit: str
    condition: str
    threshold: float | None
    base: MetricSample | None
    target: MetricSample | None
    difference: float | None
    direction: Direction | None
    beyond_spread: bool | None

    @property
    def significantly_worse(self) -> bool:
        return self.direction is Direction.WORSE and self.beyond_spread is True


def compare_metric(base: MetricSample | None, target: MetricSample | None) -> MetricComparison:
    criterion = target if target is not None and target.condition else base
    assert criterion is not None, "a metric is compared when at least one side measured it"
    difference = direction = spread = None
    if base is not None and target is not None and base.count and target.count:
        base_mean, target_mean = base.total / base.count, target.total / target.count
        difference = target_mean - base_mean
        direction = direction_of(criterion.condition, criterion.threshold, base_mean, target_mean)
        spread = beyond_spread(base, target)
    return MetricComparison(
        metric=criterion.metric,
        unit=criterion.unit,
        condition=criterion.condition,
        threshold=criterion.threshold,
        base=base,
        target=target,
        difference=difference,
        direction=direction,
        beyond_spread=spread,
    )


@dataclass(frozen=True)
class CaseComparison:
    key: CaseKey
    base: Summary | None
    target: Summary | None
    change: Change
    metrics: tuple[MetricComparison, ...]

    @property
    def flaky(self) -> bool:
        return any(
            s is not None and s.verdict is SideVerdict.FLAKY for s in (self.base, self.target)
        )

    @property
    def rank(self) -> int:
        """Regressions first, then cases with a metric significantly worse, then fixes,
        then the rest."""
        if self.change is Change.REGRESSION:
            return 0
        if any(m.significantly_worse for m in self.metrics):
            return 1
        if self.change is Change.FIX:
            return 2
        return {Change.NEW: 4, Change.MISSING: 4}.get(self.change, 3)


def compare(base: Iterable[Summary], target: Iterable[Summary]) -> list[CaseComparison]:
    """Every key either side has results for, regressions first (then by key)."""
    bases = {s.key: s for s in base}
    targets = {s.key: s for s in target}
    rows = []
    for key in sorted(bases.keys() | targets.keys()):
        b, t = bases.get(key), targets.get(key)
        names = sorted({*(b.metrics if b else {}), *(t.metrics if t else {})})
        metrics = tuple(
            compare_metric(b.metrics.get(n) if b else None, t.metrics.get(n) if t else None)
            for n in names
        )
        rows.append(CaseComparison(key, b, t, change_between(b, t), metrics))
    return sorted(rows, key=lambda r: (r.rank, r.key))


# -- firmware order --------------------------------------------------------------------------

_SEMVER = re.compile(r"^[vV]?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def version_key(version: str) -> tuple | None:
    """A sort key for a semantic version, None for anything else."""
    match = _SEMVER.match(version.strip())
    if match is None:
        return None
    numbers = [int(n) for n in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    pre = match.group(2)
    if pre is None:
        return (tuple(numbers), 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (tuple(numbers), 0, parts)


def order_firmwares(first_seen: Mapping[str, datetime]) -> list[str]:
    """The firmware versions oldest first (see the module docstring)."""
    by_time = sorted(first_seen, key=lambda v: (first_seen[v], v))
    semantic = [v for v in by_time if version_key(v) is not None]
    in_version_order = iter(sorted(semantic, key=lambda v: (version_key(v), first_seen[v], v)))
    return [next(in_version_order) if version_key(v) is not None else v for v in by_time]


# -- tracked regressions ---------------------------------------------------------------------


@dataclass(frozen=True)
class FirmwareRef:
    firmware: str
    run: RunRef | None


@dataclass(frozen=True)
class Regression:
    key: CaseKey
    last_passing: FirmwareRef  # the newest passing run on the last firmware that passed
    first_failing: FirmwareRef  # the oldest failing run on the first firmware that failed
    fixed_by: FirmwareRef | None = None  # the first firmware that passed again, if any
    flaky: bool = False  # the key's newest firmware version is flaky

    @property
    def open(self) -> bool:
        return self.fixed_by is None


def track_regressions(
    history: Iterable[Summary], first_seen: Mapping[str, datetime] | None = None
) -> tuple[list[Regression], list[Summary]]:
    """From per-firmware summaries of every key: the regressions (open and closed, in firmware
    order per key) and the keys that are flaky now (the summary of their newest firmware).
    Firmware versions are ordered by `order_firmwares` over `first_seen` (by default, each
    version's oldest result in `history`)."""
    per_key: dict[CaseKey, dict[str, Summary]] = {}
    seen: dict[str, datetime] = dict(first_seen or {})
    for summary in history:
        per_key.setdefault(summary.key, {})[summary.firmware] = summary
        at = summary.first_seen
        if first_seen is None and at is not None:
            seen[summary.firmware] = min(at, seen.get(summary.firmware, at))
    position = {v: n for n, v in enumerate(order_firmwares(seen))}
    regressions: list[Regression] = []
    flaky: list[Summary] = []
    for key in sorted(per_key):
        ordered = sorted(per_key[key].values(), key=lambda s: position.get(s.firmware, -1))
        conclusive = [s for s in ordered if s.verdict is not SideVerdict.INCONCLUSIVE]
        newest_flaky = bool(conclusive) and conclusive[-1].verdict is SideVerdict.FLAKY
        if newest_flaky:
            flaky.append(conclusive[-1])
        regressions.extend(replace(r, flaky=newest_flaky) for r in _regressions_of(key, conclusive))
    return regressions, flaky


def _regressions_of(key: CaseKey, ordered: Sequence[Summary]) -> list[Regression]:
    found: list[Regression] = []
    last_pass: Summary | None = None
    opened: Regression | None = None
    for summary in ordered:
        if summary.verdict in (SideVerdict.PASS, SideVerdict.MARGINAL):
            if opened is not None:
                found.append(
                    replace(opened, fixed_by=FirmwareRef(summary.firmware, summary.oldest_pass))
                )
                opened = None
            last_pass = summary
        elif summary.verdict is SideVerdict.FAIL and opened is None and last_pass is not None:
            opened = Regression(
                key,
                FirmwareRef(last_pass.firmware, last_pass.newest_pass),
                FirmwareRef(summary.firmware, summary.oldest_fail),
            )
    if opened is not None:
        found.append(opened)
    return found
