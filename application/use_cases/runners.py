"""Use cases of the runner registry: what the runners' reports tell it, reading it, and an
admin draining a runner (it takes no new run) or bringing it back.

The registry is written in the transaction of the report it learns from (see
`test_runs._RunTransition`), so a runner's counts never disagree with its runs. A drain is
told to the runners through the outbox (the control exchange, where the broker has one);
whatever the transport, the drained runner's next `started` is refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from application.errors import NotFound
from application.job_contract import DRAIN_KIND, drain_payload
from application.ports import Clock, IdGenerator, OutboxMessage, RunFilter, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from domain.runners import Runner, RunnerInfo, RunnerState
from domain.test_runs import TestRun

# A working runner reports every 2 s and holds its claim for the claim lease (20 s): three
# claim leases without a word and any other runner may have taken its run over, and its job
# was offered again. Shorter would show runners silent whose heartbeats are merely late;
# longer would show a runner that died online for minutes.
DEFAULT_SILENT_AFTER_S = 60.0
RECENT_RUNS = 10
MAX_LISTED = 1000


@dataclass(frozen=True)
class RunnerView:
    """A runner as the registry sees it now."""

    runner: Runner
    state: RunnerState
    current_run_ids: list[str]
    recent_runs: list[TestRun] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.current_run_ids)


def note_report(
    uow: UnitOfWork, runner_id: str, info: RunnerInfo, at: datetime, announce: bool = False
) -> Runner | None:
    """The runner `runner_id` reported (in `uow`'s transaction): registers it on its first
    report, else moves its last seen time and takes what it says about itself. A report
    that names no runner (an older runner's heartbeat) registers nothing. `announce`: the
    change is one to show (its run started or ended) even if nothing else moved."""
    runner_id = runner_id.strip()
    if not runner_id:
        return None
    runner = uow.runners.get(runner_id, for_update=True)
    if runner is None:
        runner = Runner.first_report(runner_id, at, info)
        uow.runners.add(runner)
        return runner
    before = (runner.host, runner.version, runner.executors)
    runner.heard(at, info)
    announce = announce or before != (runner.host, runner.version, runner.executors)
    uow.runners.update(runner, announce=announce)
    return runner


def note_run_ended(uow: UnitOfWork, run: TestRun, at: datetime) -> None:
    """The run ended (in `uow`'s transaction): it counts for the runner that had claimed
    it, whoever ended it (its result, its failure, a cancel, the reaper), so it does not
    move the runner's last seen time. A claimant the registry does not know (it claimed
    the run before the registry existed) is registered now."""
    if not run.runner:
        return
    runner = uow.runners.get(run.runner, for_update=True)
    if runner is None:
        runner = Runner.first_report(run.runner, at, RunnerInfo())
        runner.run_ended(run)
        uow.runners.add(runner)
        return
    runner.run_ended(run)
    uow.runners.update(runner)


def _view(uow: UnitOfWork, runner: Runner, now: datetime, silent_after_s: float) -> RunnerView:
    current = uow.runners.current_runs([runner.id]).get(runner.id, [])
    return RunnerView(runner, runner.state(now, silent_after_s), current)


def _load(uow: UnitOfWork, runner_id: str, for_update: bool = False) -> Runner:
    runner = uow.runners.get(runner_id, for_update=for_update)
    if runner is None:
        raise NotFound("runner", runner_id)
    return runner


class ListRunners:
    def __init__(
        self, uow: UowFactory, clock: Clock, silent_after_s: float = DEFAULT_SILENT_AFTER_S
    ) -> None:
        self.uow, self.clock, self.silent_after_s = uow, clock, silent_after_s

    def __call__(self) -> list[RunnerView]:
        with self.uow(read_only=True) as uow:
            runners = uow.runners.list(MAX_LISTED)
            current = uow.runners.current_runs()
        now = self.clock.now()
        return [
            RunnerView(r, r.state(now, self.silent_after_s), current.get(r.id, [])) for r in runners
        ]


class GetRunner:
    """One runner, with the runs it claimed last (newest first)."""

    def __init__(
        self, uow: UowFactory, clock: Clock, silent_after_s: float = DEFAULT_SILENT_AFTER_S
    ) -> None:
        self.uow, self.clock, self.silent_after_s = uow, clock, silent_after_s

    def __call__(self, runner_id: str, recent: int = RECENT_RUNS) -> RunnerView:
        with self.uow(read_only=True) as uow:
            runner = _load(uow, runner_id)
            view = _view(uow, runner, self.clock.now(), self.silent_after_s)
            recent_runs = uow.test_runs.list(RunFilter(runner=runner.id), recent, None)
        return RunnerView(view.runner, view.state, view.current_run_ids, recent_runs)


class _ChangeDrain:
    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        ids: IdGenerator,
        silent_after_s: float = DEFAULT_SILENT_AFTER_S,
    ) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids
        self.silent_after_s = silent_after_s

    def _apply(self, runner_id: str, change) -> RunnerView:
        with self.uow() as uow:
            runner = _load(uow, runner_id, for_update=True)
            now = self.clock.now()
            if change(runner, now):
                uow.runners.update(runner)
                payload = drain_payload(runner.id, runner.drained, runner.drain_reason)
                uow.outbox.add(OutboxMessage(self.ids.new_id(), DRAIN_KIND, "", payload, now))
            view = _view(uow, runner, now, self.silent_after_s)
            uow.commit()
        return view


class DrainRunner(_ChangeDrain):
    """The runner takes no new run from now on; the runs it has finish normally. A repeat
    changes nothing (and tells the runners nothing again)."""

    def __call__(self, runner_id: str, by: str, reason: str = "") -> RunnerView:
        return self._apply(runner_id, lambda runner, now: runner.drain(by, now, reason))


class UndrainRunner(_ChangeDrain):
    """The runner takes jobs again."""

    def __call__(self, runner_id: str) -> RunnerView:
        return self._apply(runner_id, lambda runner, now: runner.undrain())
