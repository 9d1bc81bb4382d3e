"""The in-memory twin of the runner registry: staged writes, applied on commit."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from application.errors import ConcurrentUpdate
from domain.runners import Runner
from domain.test_runs import RunStatus, TestRun

RUNNER_CHANGE = "runner"


class InMemoryRunners:
    def __init__(
        self,
        committed: dict[str, Runner],
        runs: Callable[[], list[TestRun]],
        record_change: Callable[[str, str], None],
    ) -> None:
        """`runs`: the runs as the unit of work sees them (for the current runs);
        `record_change(kind, id)`: the change feed."""
        self.committed, self.runs, self.record_change = committed, runs, record_change
        self.staged: dict[str, Runner] = {}

    def get(self, runner_id: str, for_update: bool = False) -> Runner | None:
        found = self.staged.get(runner_id) or self.committed.get(runner_id)
        return copy.deepcopy(found)

    def add(self, runner: Runner) -> None:
        if runner.id in self.staged or runner.id in self.committed:
            raise ConcurrentUpdate(f"runner {runner.id} was registered meanwhile")
        self.staged[runner.id] = copy.deepcopy(runner)
        self.record_change(RUNNER_CHANGE, runner.id)

    def update(self, runner: Runner, announce: bool = True) -> None:
        self.staged[runner.id] = copy.deepcopy(runner)
        if announce:
            self.record_change(RUNNER_CHANGE, runner.id)

    def list(self, limit: int) -> list[Runner]:
        merged = {**self.committed, **self.staged}
        return [copy.deepcopy(merged[key]) for key in sorted(merged)[:limit]]

    def current_runs(self, runner_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
        wanted = None if runner_ids is None else set(runner_ids)
        current: dict[str, list[str]] = {}
        running = [r for r in self.runs() if r.status is RunStatus.RUNNING and r.runner]
        for run in sorted(running, key=lambda r: (r.created_at, r.id)):
            if wanted is None or run.runner in wanted:
                current.setdefault(run.runner, []).append(run.id)
        return current

    def apply(self) -> None:
        self.committed.update(self.staged)
        self.staged.clear()
