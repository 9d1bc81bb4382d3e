"""The in-memory twins of the plan ports: staged writes, applied on commit, with the same
unique keys the database has (plan names, one plan run per plan and cause)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime

from application.errors import AlreadyExists
from application.plan_ports import FirmwareSighting
from domain.names import name_key
from domain.plans import PlanRun, TestPlan


@dataclass
class InMemoryPlanTables:
    plans: dict[str, TestPlan] = field(default_factory=dict)
    plan_runs: dict[str, PlanRun] = field(default_factory=dict)
    sightings: dict[str, FirmwareSighting] = field(default_factory=dict)
    sightings_done: set[str] = field(default_factory=set)


class InMemoryPlans:
    """plans, plan_runs and firmware_sightings of one unit of work (one object, three
    ports: they share the staged tables)."""

    def __init__(self, tables: InMemoryPlanTables) -> None:
        self.tables = tables
        self.clear()

    def clear(self) -> None:
        self.staged = InMemoryPlanTables()
        self.removed: set[str] = set()

    def apply(self) -> None:
        self.tables.plans.update(self.staged.plans)
        for plan_id in self.removed:
            self.tables.plans.pop(plan_id, None)
        self.tables.plan_runs.update(self.staged.plan_runs)
        self.tables.sightings.update(self.staged.sightings)
        self.tables.sightings_done |= self.staged.sightings_done
        self.clear()

    # -- plans ---------------------------------------------------------------------------

    def _plans(self) -> dict[str, TestPlan]:
        merged = {**self.tables.plans, **self.staged.plans}
        return {k: v for k, v in merged.items() if k not in self.removed}

    def add(self, plan: TestPlan) -> None:
        other = self.get_by_name(plan.name)
        if other is not None and other.id != plan.id:
            raise AlreadyExists("plan", "name", plan.name, other.name, other.id)
        self.staged.plans[plan.id] = copy.deepcopy(plan)

    update = add

    def remove(self, plan: TestPlan) -> None:
        self.removed.add(plan.id)
        self.staged.plans.pop(plan.id, None)

    def get(self, plan_id: str, for_update: bool = False) -> TestPlan | None:
        return copy.deepcopy(self._plans().get(plan_id))

    def get_by_name(self, name: str) -> TestPlan | None:
        key = name_key(name)
        found = next((p for p in self._plans().values() if p.name_key == key), None)
        return copy.deepcopy(found)

    def list(self, text: str | None, limit: int, after: tuple | None) -> list[TestPlan]:
        found = [p for p in self._plans().values() if not text or text.lower() in p.name.lower()]
        found.sort(key=lambda p: (p.name, p.id))
        if after is not None:
            found = [p for p in found if (p.name, p.id) > tuple(after)]
        return copy.deepcopy(found[:limit])

    def list_triggered(self) -> list[TestPlan]:
        return copy.deepcopy(sorted((p for p in self._plans().values() if p.triggers), key=_id))


class InMemoryPlanRuns:
    def __init__(self, plans: InMemoryPlans) -> None:
        self.plans = plans

    def _all(self) -> dict[str, PlanRun]:
        return {**self.plans.tables.plan_runs, **self.plans.staged.plan_runs}

    def add(self, plan_run: PlanRun) -> None:
        key = plan_run.cause.debounce_key
        if key is not None and self.has_cause(plan_run.plan_id, key):
            raise AlreadyExists("plan run", "cause", key)
        self.update(plan_run)

    def update(self, plan_run: PlanRun) -> None:
        self.plans.staged.plan_runs[plan_run.id] = copy.deepcopy(plan_run)

    def get(self, plan_run_id: str) -> PlanRun | None:
        return copy.deepcopy(self._all().get(plan_run_id))

    def has_cause(self, plan_id: str, debounce_key: str) -> bool:
        return any(
            r.plan_id == plan_id and r.cause.debounce_key == debounce_key
            for r in self._all().values()
        )

    def list(self, plan_id: str | None, limit: int, after: tuple | None) -> list[PlanRun]:
        found = [r for r in self._all().values() if plan_id in (None, r.plan_id)]
        found.sort(key=_created, reverse=True)
        if after is not None:
            found = [r for r in found if _created(r) < tuple(after)]
        return copy.deepcopy(found[:limit])

    def list_unfinished(self, limit: int) -> list[PlanRun]:
        found = sorted((r for r in self._all().values() if not r.finished), key=_created)
        return copy.deepcopy(found[:limit])


class InMemoryFirmwareSightings:
    def __init__(self, plans: InMemoryPlans) -> None:
        self.plans = plans

    def add(self, sighting: FirmwareSighting) -> None:
        self.plans.staged.sightings[sighting.id] = sighting

    def pending(self, limit: int) -> list[FirmwareSighting]:
        done = self.plans.tables.sightings_done | self.plans.staged.sightings_done
        found = {**self.plans.tables.sightings, **self.plans.staged.sightings}
        waiting = [s for s in found.values() if s.id not in done]
        return sorted(waiting, key=lambda s: (s.seen_at, s.id))[:limit]

    def mark_done(self, sighting_ids: list[str], at: datetime) -> None:
        self.plans.staged.sightings_done.update(sighting_ids)


def _id(plan: TestPlan) -> str:
    return plan.id


def _created(plan_run: PlanRun) -> tuple:
    return (plan_run.created_at.isoformat(), plan_run.id)
