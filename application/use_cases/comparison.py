"""Comparing firmware versions (or two runs), tracked regressions, flaky cases, the firmware
versions seen. The rules are in domain.comparison; these load the summaries and name things.

The store keeps the summaries per test case x model x environment x firmware version up to
date as runs complete (`ResultSummaries.record_completed`, called by RecordRunResult), so a
comparison of two firmware versions and regression tracking read a few rows per key, not
every result; docs/comparison.md has the figures that decided it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from application.errors import NotFound
from application.ports import FirmwareSeen, ResultScope, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from domain.comparison import (
    CaseComparison,
    CaseKey,
    Regression,
    Summary,
    compare,
    order_firmwares,
    track_regressions,
)
from domain.errors import InvalidValue


@dataclass(frozen=True)
class CompareRequest:
    """Each side is a firmware version or one run; the filters narrow both sides."""

    base_firmware: str | None = None
    target_firmware: str | None = None
    base_run: str | None = None
    target_run: str | None = None
    model: str | None = None
    environment_id: str | None = None
    test_case_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True)
class Names:
    """Display names of the test cases and environments of some keys (their current names;
    the id where one was deleted)."""

    test_cases: dict[str, str] = field(default_factory=dict)
    environments: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    base: str  # what each side is, e.g. "firmware 4.2.0" or "run <id>"
    target: str
    rows: list[CaseComparison]
    names: Names


def _names(uow: UnitOfWork, keys: Iterable[CaseKey]) -> Names:
    keys = list(keys)
    cases, environments = {}, {}
    for case_id in {k.test_case_id for k in keys}:
        case = uow.test_cases.get(case_id)
        cases[case_id] = case.name if case else case_id
    for environment_id in {k.environment_id for k in keys}:
        environment = uow.environments.get(environment_id)
        environments[environment_id] = environment.name if environment else environment_id
    return Names(cases, environments)


def _side(firmware: str | None, run: str | None, which: str) -> tuple[str, ResultScope]:
    if bool(firmware) == bool(run):
        raise InvalidValue(which, f"give either {which}_firmware or {which}_run")
    if firmware:
        return f"firmware {firmware}", ResultScope(firmware=firmware)
    return f"run {run}", ResultScope(run_id=run)


class CompareResults:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, request: CompareRequest) -> Comparison:
        base_label, base_scope = _side(request.base_firmware, request.base_run, "base")
        target_label, target_scope = _side(request.target_firmware, request.target_run, "target")
        if (
            request.created_from
            and request.created_to
            and request.created_from > request.created_to
        ):
            raise InvalidValue("from", "must not be after to")
        narrowing = {
            "model": request.model,
            "environment_id": request.environment_id,
            "test_case_id": request.test_case_id,
            "created_from": request.created_from,
            "created_to": request.created_to,
        }
        with self.uow(read_only=True) as uow:
            for run_id in (request.base_run, request.target_run):
                if run_id and uow.test_runs.get(run_id) is None:
                    raise NotFound("test run", run_id)
            base = uow.results.summaries(replace(base_scope, **narrowing))
            target = uow.results.summaries(replace(target_scope, **narrowing))
            rows = compare(base, target)
            names = _names(uow, (r.key for r in rows))
        return Comparison(base_label, target_label, rows, names)


@dataclass(frozen=True)
class RegressionsRequest:
    open: bool | None = None  # None: open and closed
    model: str | None = None
    environment_id: str | None = None
    test_case_id: str | None = None


@dataclass(frozen=True)
class Regressions:
    regressions: list[Regression]
    flaky: list[Summary]  # keys flaky on their newest firmware version
    names: Names


class ListRegressions:
    """Every regression ever opened (newest first by when it was found), and the flaky keys."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, request: RegressionsRequest) -> Regressions:
        scope = ResultScope(
            model=request.model,
            environment_id=request.environment_id,
            test_case_id=request.test_case_id,
        )
        with self.uow(read_only=True) as uow:
            history = uow.results.summaries(scope, by_firmware=True)
            seen = {f.version: f.first_seen for f in uow.results.firmware_versions()}
            regressions, flaky = track_regressions(history, seen)
            if request.open is not None:
                regressions = [r for r in regressions if r.open == request.open]
            names = _names(uow, [*(r.key for r in regressions), *(s.key for s in flaky)])

        def found_at(r: Regression) -> tuple:
            run = r.first_failing.run
            return (run.at.isoformat() if run else "", r.key)

        return Regressions(sorted(regressions, key=found_at, reverse=True), flaky, names)


class ListFirmwareVersions:
    """The firmware versions with results, oldest first (domain.comparison order)."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self) -> list[FirmwareSeen]:
        with self.uow(read_only=True) as uow:
            seen = {f.version: f for f in uow.results.firmware_versions()}
        return [seen[v] for v in order_firmwares({v: f.first_seen for v, f in seen.items()})]
