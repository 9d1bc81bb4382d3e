"""A run's log: runners append batches of lines, readers page through it, download it, or
follow it as it grows (the per-run live stream)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.errors import NotFound
from application.pagination import Page, check_limit, decode_cursor, encode_cursor
from application.ports import Clock, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from application.run_log_ports import LogFilter
from domain.errors import InvalidValue, RunAlreadyFinished
from domain.run_logs import LogLimits, LogLine, append_lines, check_batch, purge_log
from domain.test_runs import TestRun

LOG_CURSOR = "run_log"
EXPORT_PAGE_LINES = 1000
PURGE_BATCH_RUNS = 100
PURGE_BATCH_LINES = 100_000  # a batch takes runs up to this many lines (one run at least)


def _run(uow: UnitOfWork, run_id: str, for_update: bool = False) -> TestRun:
    run = uow.test_runs.get(run_id, for_update=for_update)
    if run is None:
        raise NotFound("test run", run_id)
    return run


@dataclass(frozen=True)
class AppendOutcome:
    """What a runner is told about its batch."""

    accepted: int  # lines of the batch stored
    dropped: int  # lines of the batch dropped: the run's log had reached its limits
    truncated: bool  # the run's log has been cut (by this batch or an earlier one)
    last_seq: int  # the run's last sequence number


class AppendRunLogs:
    """Number and store a batch of a running run's lines within the run's limits. A batch is
    taken whole or refused whole (a line too long, a device not of the run: nothing stored);
    the lines beyond the limits are dropped and counted, never an error, so a chatty test
    never fails its run."""

    def __init__(self, uow: UowFactory, clock: Clock, limits: LogLimits) -> None:
        self.uow, self.clock, self.limits = uow, clock, limits

    def __call__(self, run_id: str, lines: Sequence[LogLine]) -> AppendOutcome:
        with self.uow() as uow:
            # the run's row is locked: a batch and the run's end come one after the other,
            # so a follower that sees the run finished has every line (ReadLogTail)
            run = _run(uow, run_id, for_update=True)
            if run.status.finished:
                raise RunAlreadyFinished(f"test run {run_id} has finished; its log is closed")
            check_batch(lines, {d.id for d in run.devices}, {c.id for c in run.test_cases})
            totals = uow.run_logs.totals_for_update(run_id)
            appended = append_lines(totals, lines, self.limits, self.clock.now())
            if appended.stored:
                uow.run_logs.append(run_id, appended.stored, appended.totals)
                uow.commit()
        marker = 1 if appended.totals.truncated and not totals.truncated else 0
        return AppendOutcome(
            accepted=len(appended.stored) - marker,
            dropped=appended.dropped,
            truncated=appended.totals.truncated,
            last_seq=appended.totals.lines,
        )


def _after_seq(cursor: str | None) -> int:
    key = decode_cursor(cursor, LOG_CURSOR, 1)
    if key is None:
        return 0
    if not key[0].isdigit() or len(key[0]) > 12:
        raise InvalidValue("cursor", "is not a cursor this API issued for this list")
    return int(key[0])


class ListRunLogs:
    """One page of a run's log, oldest line first (the cursor is the last line's number)."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(
        self,
        run_id: str,
        where: LogFilter,
        limit: int | None,
        cursor: str | None,
        after_seq: int = 0,
    ) -> Page[LogLine]:
        """`after_seq`: start after this line (a follower catching up); a cursor wins."""
        limit = check_limit(limit)
        after = _after_seq(cursor) if cursor else after_seq
        with self.uow(read_only=True) as uow:
            _run(uow, run_id)
            lines = uow.run_logs.lines(run_id, where, after, limit + 1)
        if len(lines) > limit:
            lines = lines[:limit]
            return Page(lines, encode_cursor(LOG_CURSOR, (str(lines[-1].seq),)))
        return Page(lines, None)


class ExportRunLog:
    """The whole log (or its filtered part) line by line, read a page at a time in short
    read-only units of work: a log of a million lines is downloaded with the memory of one
    page, and no transaction stays open while a slow client reads."""

    def __init__(self, uow: UowFactory, page_lines: int = EXPORT_PAGE_LINES) -> None:
        self.uow, self.page_lines = uow, page_lines

    def __call__(self, run_id: str, where: LogFilter) -> Iterator[LogLine]:
        with self.uow(read_only=True) as uow:
            _run(uow, run_id)  # refused before the first byte of an answer is sent
        return self._lines(run_id, where)

    def _lines(self, run_id: str, where: LogFilter) -> Iterator[LogLine]:
        after = 0
        while True:
            with self.uow(read_only=True) as uow:
                lines = uow.run_logs.lines(run_id, where, after, self.page_lines)
            yield from lines
            if len(lines) < self.page_lines:
                return
            after = lines[-1].seq


@dataclass(frozen=True)
class LogTail:
    lines: list[LogLine]
    finished: bool  # the run has finished (read before the lines: none can follow these)


class ReadLogTail:
    """The lines after `after_seq`, and whether the run has finished: what a follower of the
    log polls. The run's status is read before its lines, so when it says finished and no
    lines came, the log is complete (a finished run takes no more lines)."""

    def __init__(self, uow: UowFactory, limit: int = 500) -> None:
        self.uow, self.limit = uow, limit

    def __call__(self, run_id: str, after_seq: int, where: LogFilter | None = None) -> LogTail:
        with self.uow(read_only=True) as uow:
            finished = _run(uow, run_id).status.finished
            lines = uow.run_logs.lines(run_id, where or LogFilter(), after_seq, self.limit)
        return LogTail(lines, finished)


@dataclass(frozen=True)
class PurgedRunLog:
    """What a purge removed of one run's log."""

    run_id: str
    lines: int  # the lines deleted
    bytes: int  # what they counted against the run's byte limit


class PurgeRunLogs:
    """Delete the log lines of the runs that finished longer ago than `older_than` and leave
    one marker line in their place (domain.run_logs.purge_log). Runs go in batches, each
    committed on its own and of at most so many lines (a run beyond that is a batch alone),
    so that no transaction holds a million deletions; a purged log is not purged again, and
    a run that has not finished is never touched. Returns what was removed, per run."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        batch_runs: int = PURGE_BATCH_RUNS,
        batch_lines: int = PURGE_BATCH_LINES,
    ) -> None:
        self.uow, self.clock = uow, clock
        self.batch_runs, self.batch_lines = batch_runs, batch_lines

    def __call__(self, older_than: timedelta) -> list[PurgedRunLog]:
        if older_than <= timedelta(0):
            raise InvalidValue("older_than", "must be a positive age")
        now = self.clock.now()
        removed: list[PurgedRunLog] = []
        while True:
            batch = self._batch(now, older_than)
            removed.extend(batch)
            if not batch:
                return removed

    def _batch(self, now: datetime, older_than: timedelta) -> list[PurgedRunLog]:
        purged: list[PurgedRunLog] = []
        with self.uow() as uow:
            lines = 0
            for run_id, seen in uow.run_logs.purgeable(now - older_than, self.batch_runs):
                if purged and lines + seen.lines > self.batch_lines:
                    break
                totals = uow.run_logs.totals_for_update(run_id)
                if totals.purged_at is not None:  # another purge was first
                    continue
                deleted = uow.run_logs.delete_lines(run_id)
                after = purge_log(totals, deleted, now, older_than)
                uow.run_logs.append(run_id, [after.marker], after.totals)
                purged.append(PurgedRunLog(run_id, deleted, totals.bytes))
                lines += deleted
            uow.commit()
        return purged
