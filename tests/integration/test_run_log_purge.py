"""Purging the logs of old runs (PurgeRunLogs, `devicelab logs purge`) on SQLite, PostgreSQL
and the in-memory twin alike: only runs that finished before the cutoff lose their lines, a
running or waiting run never does; each purged log is one warning line numbered after its
last line; a second purge finds nothing; the runs go in batches, each committed alone."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.run_log_ports import LogFilter
from application.use_cases.run_logs import (
    AppendRunLogs,
    ExportRunLog,
    PurgedRunLog,
    PurgeRunLogs,
    ReadLogTail,
)
from domain.errors import InvalidValue
from domain.run_logs import LogLevel, LogLimits, LogLine
from domain.test_runs import RunStatus, TestRun
from tests.integration.conftest import T0, Lab, database_at_head

DAY = timedelta(days=1)
AGE = timedelta(days=90)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
def purge_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    clock = SettableClock(T0)
    if request.param == "memory":
        yield Lab(functools.partial(InMemoryUnitOfWork, InMemoryStore()), clock, SequentialIds())
        return
    engine = make_engine(database_at_head(request, request.param))
    try:
        uow = functools.partial(SqlAlchemyUnitOfWork, make_session_factory(engine))
        yield Lab(uow, clock, SequentialIds(), engine)
    finally:
        engine.dispose()


class Logs:
    """Runs with lines in their logs, started and finished at the lab clock's times."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.device = lab.add_device("meter-01")
        self.case = lab.add_test_case("voltage")
        self.environment = lab.add_environment()
        self.append = AppendRunLogs(lab.new_uow, lab.clock, LogLimits(1000, 1_000_000))

    def run(self, lines: int, finish: bool = True) -> TestRun:
        run = self.lab.start([self.device], [self.case], self.environment)
        if lines:
            self.lab.record_started(run.id)
            batch = [
                LogLine(at=self.lab.clock.now(), level=LogLevel.INFO, message=f"line {n}")
                for n in range(lines)
            ]
            self.append(run.id, batch)
        if finish:
            self.lab.cancel_test_run(run.id, by="alice")
        return self.lab.get_test_run(run.id)

    def lines(self, run_id: str) -> list[LogLine]:
        return list(ExportRunLog(self.lab.new_uow)(run_id, LogFilter()))

    def totals(self, run_id: str):
        with self.lab.new_uow(read_only=True) as uow:
            return uow.run_logs.totals(run_id)


def test_only_runs_finished_before_the_cutoff_lose_their_lines(purge_lab: Lab) -> None:
    logs = Logs(purge_lab)
    clock = purge_lab.clock
    old = logs.run(3)  # finished at T0
    clock.advance((10 * DAY).total_seconds())
    newer = logs.run(2)  # finished 10 days later: kept
    clock.advance((5 * DAY).total_seconds())
    running = logs.run(4, finish=False)  # started 15 days in, still running
    waiting = purge_lab.start([purge_lab.add_device("meter-02")], [logs.case], logs.environment)
    assert running.status is RunStatus.RUNNING
    clock.advance((AGE - 10 * DAY).total_seconds())  # the old run 95 days old, the newer 85

    purged = PurgeRunLogs(purge_lab.new_uow, clock)(AGE)

    assert purged == [PurgedRunLog(old.id, 3, len("line 0") * 3)]
    (marker,) = logs.lines(old.id)
    assert marker.seq == 4 and marker.level is LogLevel.WARNING
    assert marker.message == (
        f"[devicelab] log purged: devicelab removed 3 lines on {clock.now().date().isoformat()} "
        "because the run finished more than 90 days ago"
    )
    totals = logs.totals(old.id)
    assert (totals.lines, totals.bytes, totals.purged_at) == (4, marker.size, clock.now())
    # a follower that had read every line reads on from there and sees the marker
    tail = ReadLogTail(purge_lab.new_uow)(old.id, after_seq=3)
    assert [line.seq for line in tail.lines] == [4] and tail.finished
    assert [line.message for line in logs.lines(newer.id)] == ["line 0", "line 1"]
    assert len(logs.lines(running.id)) == 4
    assert logs.lines(waiting.id) == []

    # everything has finished long ago now, except the running run: nothing is purged twice
    clock.advance((365 * DAY).total_seconds())
    again = PurgeRunLogs(purge_lab.new_uow, clock)(AGE)
    assert [(p.run_id, p.lines) for p in again] == [(newer.id, 2)]
    assert PurgeRunLogs(purge_lab.new_uow, clock)(AGE) == []
    assert [line.seq for line in logs.lines(old.id)] == [4]
    assert len(logs.lines(running.id)) == 4


def test_runs_are_purged_in_batches_each_committed_alone(purge_lab: Lab) -> None:
    logs = Logs(purge_lab)
    runs = [logs.run(n) for n in (5, 1, 1, 1, 6, 2)]
    purge_lab.clock.advance((AGE + DAY).total_seconds())
    purge = PurgeRunLogs(purge_lab.new_uow, purge_lab.clock, batch_runs=3, batch_lines=6)
    commits: list[int] = []
    real_batch = purge._batch

    def counted(now, older_than):
        done = real_batch(now, older_than)
        commits.append(len(done))
        return done

    purge._batch = counted  # type: ignore[method-assign]
    purged = purge(AGE)
    assert [p.run_id for p in purged] == [r.id for r in runs]
    # at most 3 runs and 6 lines a batch, one run at least: 5+1, 1+1, 6, 2, then none left
    assert commits == [2, 2, 1, 1, 0]
    for run, lines in zip(runs, (5, 1, 1, 1, 6, 2), strict=True):
        assert [line.seq for line in logs.lines(run.id)] == [lines + 1]


def test_an_age_that_is_not_positive_is_refused(purge_lab: Lab) -> None:
    with pytest.raises(InvalidValue):
        PurgeRunLogs(purge_lab.new_uow, purge_lab.clock)(timedelta(0))


def test_the_purged_rows_are_gone_from_the_tables(purge_lab: Lab) -> None:
    if purge_lab.engine is None:
        pytest.skip("SQL only")
    logs = Logs(purge_lab)
    run = logs.run(7)
    purge_lab.clock.advance((AGE + DAY).total_seconds())
    PurgeRunLogs(purge_lab.new_uow, purge_lab.clock)(AGE)
    count = sa.text("SELECT count(*) FROM run_log_lines WHERE run_id = :run")
    with purge_lab.engine.connect() as connection:
        assert connection.execute(count, {"run": run.id}).scalar_one() == 1
