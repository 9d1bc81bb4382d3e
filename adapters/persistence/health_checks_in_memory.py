"""The in-memory twin of the health-check designations (see in_memory.py)."""

from __future__ import annotations

import copy

from application.errors import ConcurrentUpdate
from domain.health_checks import HealthCheck
from domain.test_runs import TestRun


class InMemoryHealthChecks:
    def __init__(self, committed: dict[str, HealthCheck], runs: dict[str, TestRun]) -> None:
        self.committed, self.runs = committed, runs
        self.staged: dict[str, HealthCheck | None] = {}

    def _current(self, check_id: str) -> HealthCheck | None:
        if check_id in self.staged:
            return self.staged[check_id]
        return self.committed.get(check_id)

    def add(self, check: HealthCheck) -> None:
        check.version += 1
        self.staged[check.id] = copy.deepcopy(check)

    def update(self, check: HealthCheck) -> None:
        current = self._current(check.id)
        if current is None or current.version != check.version:
            raise ConcurrentUpdate(f"health check {check.name} was changed meanwhile; retry")
        check.version += 1
        self.staged[check.id] = copy.deepcopy(check)

    def remove(self, check: HealthCheck) -> None:
        self.staged[check.id] = None

    def get(self, check_id: str) -> HealthCheck | None:
        return copy.deepcopy(self._current(check_id))

    def list(self) -> list[HealthCheck]:
        ids = set(self.committed) | set(self.staged)
        found = [c for c in (self._current(i) for i in ids) if c is not None]
        return [copy.deepcopy(c) for c in sorted(found, key=lambda c: (c.name, c.id))]

    def checking_device_ids(self) -> set[str]:
        found: set[str] = set()
        for run in self.runs.values():
            if run.is_health_check and not run.status.finished:
                found.update(run.requested_device_ids or run.device_ids)
        return found

    def apply(self) -> None:
        for check_id, check in self.staged.items():
            if check is None:
                self.committed.pop(check_id, None)
            else:
                self.committed[check_id] = check
        self.staged.clear()
