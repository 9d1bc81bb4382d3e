"""Test plans: a named set of test cases run together on a selection of devices, by hand, on
a schedule (cron) or when a device reports firmware the plan has not run on yet.

A plan expands into cells, one test run each: the full product of its environments and, when
it has a matrix of device models, those models. In a model's cell every device request asks
for that model (it replaces the model the request names) and a named device takes part only
in the cell of its own model; a cell left without any device is skipped, and a plan whose
every cell is empty cannot start. Without models there is one cell per environment with the
whole selection.

A plan run groups the runs one start made, keeps the plan as it was then (plans are
versioned like test cases) and what caused it; its progress and verdict follow from its
runs. Which cause may start a plan run only once is its debounce key: a cron slot once per
plan and slot, new firmware once per plan, device and version (manual starts always)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.cron import CronExpression, zone
from domain.editing import apply_versioned_edit
from domain.errors import InvalidValue
from domain.names import clean_name, name_key
from domain.scheduling import DeviceRequest, Priority
from domain.test_runs import VERDICT_ORDER, RunStatus, Verdict

MAX_TEST_CASES = 50
MAX_ENVIRONMENTS = 20
MAX_MODELS = 20
MAX_TRIGGERS = 10


class TriggerKind(enum.StrEnum):
    CRON = "cron"
    NEW_FIRMWARE = "new_firmware"


@dataclass(frozen=True)
class Trigger:
    """When a plan starts by itself: on a cron schedule in a time zone (default UTC), or
    when a device of its selection reports new firmware."""

    kind: TriggerKind
    cron: str | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        try:
            kind = TriggerKind(self.kind)
        except ValueError:
            kinds = ", ".join(k.value for k in TriggerKind)
            raise InvalidValue("triggers", f"kind must be one of {kinds}") from None
        object.__setattr__(self, "kind", kind)
        if kind is TriggerKind.CRON:
            try:
                expression = CronExpression.parse(self.cron or "")
                timezone = zone(self.timezone).key
            except InvalidValue as error:  # said at the triggers, which is what a form shows
                raise InvalidValue("triggers", error.message) from None
            object.__setattr__(self, "cron", expression.text)
            object.__setattr__(self, "timezone", timezone)
        else:
            if self.cron:
                raise InvalidValue("triggers", "only a cron trigger has a cron expression")
            object.__setattr__(self, "cron", None)
            object.__setattr__(self, "timezone", "UTC")

    def latest_slot(self, after: datetime, until: datetime) -> datetime | None:
        if self.kind is not TriggerKind.CRON or self.cron is None:
            return None
        return CronExpression.parse(self.cron).latest_slot(after, until, zone(self.timezone))


class CauseKind(enum.StrEnum):
    MANUAL = "manual"
    CRON = "cron"
    NEW_FIRMWARE = "new_firmware"


@dataclass(frozen=True)
class Cause:
    """What started a plan run: a person (`by`), a cron slot, or a device's new firmware."""

    kind: CauseKind
    by: str = ""
    slot: datetime | None = None
    device_id: str = ""
    firmware_version: str = ""

    @classmethod
    def manual(cls, by: str) -> Cause:
        return cls(CauseKind.MANUAL, by=by)

    @classmethod
    def cron(cls, slot: datetime) -> Cause:
        return cls(CauseKind.CRON, by="cron", slot=slot)

    @classmethod
    def new_firmware(cls, device_id: str, version: str) -> Cause:
        return cls(
            CauseKind.NEW_FIRMWARE, by="new firmware", device_id=device_id, firmware_version=version
        )

    @property
    def debounce_key(self) -> str | None:
        """Unique per plan: the same slot or the same (device, version) never starts the plan
        twice, whichever process or worker sees it. None: any number of manual starts."""
        if self.kind is CauseKind.CRON and self.slot is not None:
            return f"cron:{self.slot.isoformat()}"
        if self.kind is CauseKind.NEW_FIRMWARE:
            return f"firmware:{self.device_id}:{self.firmware_version}"
        return None


@dataclass(frozen=True)
class DeviceFacts:
    """What the plan's selection looks at of a device."""

    id: str
    model: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class PlanCell:
    """One run of a plan run: an environment, the model of the matrix (None without one),
    and the devices it asks for."""

    environment_id: str
    model: str | None
    device_ids: tuple[str, ...]
    device_requests: tuple[DeviceRequest, ...]

    @property
    def label(self) -> str:
        return self.environment_id + (f" × {self.model}" if self.model else "")


@dataclass(frozen=True)
class PlanSnapshot:
    """A plan as it was when a plan run started."""

    id: str
    version: int
    name: str
    test_case_ids: tuple[str, ...]
    environment_ids: tuple[str, ...]
    device_ids: tuple[str, ...]
    device_requests: tuple[DeviceRequest, ...]
    models: tuple[str, ...]
    parameters: dict[str, Any]
    priority: Priority
    triggers: tuple[Trigger, ...]

    def cells(self, model_of: Mapping[str, str]) -> list[PlanCell]:
        """The runs of a start, environments x models (`model_of`: each named device's
        model). Cells without any device are left out."""
        cells = []
        for environment_id in self.environment_ids:
            if not self.models:
                cells.append(PlanCell(environment_id, None, self.device_ids, self.device_requests))
                continue
            for model in self.models:
                named = tuple(d for d in self.device_ids if model_of.get(d) == model)
                requests = tuple(
                    DeviceRequest(role=r.role, model=model, labels=r.labels, count=r.count)
                    for r in self.device_requests
                )
                if named or requests:
                    cells.append(PlanCell(environment_id, model, named, requests))
        return cells

    def selects(self, device: DeviceFacts) -> bool:
        """Is the device part of the plan's selection (named, or of a kind it requests, and
        of a model of its matrix if it has one)?"""
        if self.models and device.model not in self.models:
            return False
        if device.id in self.device_ids:
            return True
        return any(
            (not r.model or r.model == device.model or self.models)
            and all(device.labels.get(k) == v for k, v in r.labels.items())
            for r in self.device_requests
        )

    def firmware_cells(self, device: DeviceFacts) -> list[PlanCell]:
        """The runs new firmware on `device` starts: the plan's test cases on that device
        alone, once per environment."""
        model = device.model if self.models else None
        return [PlanCell(e, model, (device.id,), ()) for e in self.environment_ids]


def _ids(field_name: str, values: Iterable[str], most: int, least: int = 0) -> list[str]:
    cleaned = [str(v).strip() for v in values]
    if any(not v for v in cleaned):
        raise InvalidValue(field_name, "ids must not be empty")
    if len(set(cleaned)) != len(cleaned):
        raise InvalidValue(field_name, "each may appear only once")
    if len(cleaned) < least:
        raise InvalidValue(field_name, f"needs at least {least}")
    if len(cleaned) > most:
        raise InvalidValue(field_name, f"at most {most}")
    return cleaned


@dataclass(eq=False)
class TestPlan:
    __test__ = False

    id: str
    name: str
    test_case_ids: list[str]
    environment_ids: list[str]
    device_ids: list[str] = field(default_factory=list)
    device_requests: list[DeviceRequest] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    priority: Priority = Priority.NORMAL
    triggers: list[Trigger] = field(default_factory=list)
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # cron slots up to this instant have been looked at (run or, when the plan was created
    # or its triggers changed later, passed over); not part of the plan's content
    cron_checked_at: datetime | None = None

    def __post_init__(self) -> None:
        self.name = clean_name(self.name)
        self.test_case_ids = _ids("test_case_ids", self.test_case_ids, MAX_TEST_CASES, 1)
        self.environment_ids = _ids("environment_ids", self.environment_ids, MAX_ENVIRONMENTS, 1)
        self.device_ids = _ids("device_ids", self.device_ids, 200)
        self.device_requests = list(self.device_requests or [])
        if not all(isinstance(r, DeviceRequest) for r in self.device_requests):
            raise InvalidValue("device_requests", "must be device requests")
        if not self.device_ids and not self.device_requests:
            raise InvalidValue(
                "device_ids", "the selection is empty: name devices or add device_requests"
            )
        models = [str(m).strip() for m in self.models or []]
        if any(not m for m in models) or len(set(models)) != len(models):
            raise InvalidValue("models", "each model once, none empty")
        if len(models) > MAX_MODELS:
            raise InvalidValue("models", f"at most {MAX_MODELS}")
        self.models = models
        self.parameters = dict(self.parameters or {})
        try:
            self.priority = Priority(self.priority)
        except ValueError:
            raise InvalidValue("priority", "must be low, normal or high") from None
        self.triggers = list(self.triggers or [])
        if len(self.triggers) > MAX_TRIGGERS:
            raise InvalidValue("triggers", f"at most {MAX_TRIGGERS}")
        if not all(isinstance(t, Trigger) for t in self.triggers):
            raise InvalidValue("triggers", "must be triggers")
        if len(set(self.triggers)) != len(self.triggers):
            raise InvalidValue("triggers", "each trigger once")

    @property
    def name_key(self) -> str:
        return name_key(self.name)

    @property
    def on_new_firmware(self) -> bool:
        return any(t.kind is TriggerKind.NEW_FIRMWARE for t in self.triggers)

    def revise(self, at: datetime, **changes: Any) -> None:
        """Apply an edit; any real change bumps the version (plan runs keep the version they
        started from). Cron slots from before the edit never fire afterwards."""
        allowed = {
            "name",
            "test_case_ids",
            "environment_ids",
            "device_ids",
            "device_requests",
            "models",
            "parameters",
            "priority",
            "triggers",
        }
        before = apply_versioned_edit(self, at, changes, allowed)
        if before is not None and self.triggers != list(before.triggers):
            self.cron_checked_at = at

    def due_cron_slot(self, now: datetime) -> datetime | None:
        """The newest cron slot of any trigger since the last look (or since the plan was
        made), up to `now`: one, however many were missed."""
        since = self.cron_checked_at or self.created_at or now
        slots = [s for t in self.triggers if (s := t.latest_slot(since, now)) is not None]
        return max(slots, default=None)

    def snapshot(self) -> PlanSnapshot:
        return PlanSnapshot(
            id=self.id,
            version=self.version,
            name=self.name,
            test_case_ids=tuple(self.test_case_ids),
            environment_ids=tuple(self.environment_ids),
            device_ids=tuple(self.device_ids),
            device_requests=tuple(self.device_requests),
            models=tuple(self.models),
            parameters=dict(self.parameters),
            priority=self.priority,
            triggers=tuple(self.triggers),
        )


# -- plan runs ---------------------------------------------------------------------------

# The plan run's verdict is its most severe run's, in this order (most severe first). A new
# verdict (e.g. marginal: a pass with a warning) gets its place here, and nowhere else.
# the one ordering of verdicts, worst first (marginal, a pass with a warning, between
# inconclusive and pass): a plan run has the worst verdict of its runs
VERDICT_SEVERITY: tuple[Verdict, ...] = VERDICT_ORDER


def run_outcome(status: RunStatus, verdict: Verdict | None) -> Verdict | None:
    """What one run contributes: its verdict once completed; a run that failed (runner
    error) or was aborted judged nothing, so it is inconclusive. None while it goes on."""
    if status is RunStatus.COMPLETED and verdict is not None:
        return verdict
    if status.finished:
        return Verdict.INCONCLUSIVE
    return None


def plan_verdict(outcomes: Iterable[Verdict]) -> Verdict:
    """Fail if any run fails; inconclusive if any is and none fails; marginal if any is and
    none is worse; else pass (no runs at all: inconclusive). A verdict missing from VERDICT_SEVERITY counts as inconclusive."""
    rank = {v: i for i, v in enumerate(VERDICT_SEVERITY)}
    fallback = rank[Verdict.INCONCLUSIVE]
    found = list(outcomes)
    if not found:
        return Verdict.INCONCLUSIVE
    return min(found, key=lambda v: rank.get(v, fallback))


@dataclass(frozen=True)
class PlanRunEntry:
    run_id: str
    environment_id: str
    model: str | None = None
    environment_name: str = ""  # as it was named when the run started


@dataclass(frozen=True)
class RunState:
    """What a plan run reads of one of its runs."""

    run_id: str
    status: RunStatus
    verdict: Verdict | None
    progress: float


@dataclass(frozen=True)
class PlanProgress:
    total: int
    finished: int
    by_status: dict[str, int]
    fraction: float  # 0..1: finished runs count 1, the others their own progress
    verdict: Verdict | None  # once every run has finished


def progress_of(states: Sequence[RunState]) -> PlanProgress:
    by_status: dict[str, int] = {}
    outcomes = []
    done = 0.0
    for state in states:
        by_status[state.status.value] = by_status.get(state.status.value, 0) + 1
        outcome = run_outcome(state.status, state.verdict)
        if outcome is not None:
            outcomes.append(outcome)
            done += 1
        else:
            done += min(max(state.progress, 0.0), 1.0)
    finished = len(outcomes)
    total = len(states)
    return PlanProgress(
        total=total,
        finished=finished,
        by_status=by_status,
        fraction=done / total if total else 1.0,
        verdict=plan_verdict(outcomes) if finished == total else None,
    )


@dataclass(eq=False)
class PlanRun:
    id: str
    plan: PlanSnapshot
    cause: Cause
    runs: tuple[PlanRunEntry, ...]
    created_at: datetime
    finished_at: datetime | None = None
    verdict: Verdict | None = None
    skipped: tuple[str, ...] = ()  # cells of the matrix without any device

    @property
    def plan_id(self) -> str:
        return self.plan.id

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def settle(self, states: Sequence[RunState], at: datetime) -> bool:
        """Once every run has finished, the plan run finishes with the overall verdict.
        True when that happened now."""
        if self.finished:
            return False
        progress = progress_of(states)
        if progress.verdict is None:
            return False
        self.verdict = progress.verdict
        self.finished_at = at
        return True
