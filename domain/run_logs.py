"""What a runner tells about a run as it goes: log lines, kept in order and within bounds.

A run's log is one sequence, numbered by devicelab as lines arrive (a runner's clock and its
batches may interleave; the number may not). A run may hold at most so many lines and bytes:
the first batch that would go beyond either keeps what fits, then one marker line says the
log was cut, and every later line is dropped. The marker is the last line of the log, so a
reader sees where it ends and why.

A finished run's log may be purged once the run is old enough: its lines go, and one marker
line, numbered after the last of them, says how many went, when and why; a follower that had
read up to the last line still reads on from where it was."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from domain.errors import InvalidValue

MAX_MESSAGE_CHARS = 8192  # a longer line is refused; the reference runner splits its own
MAX_BATCH_LINES = 1000


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return list(LogLevel).index(self)


@dataclass(frozen=True)
class LogLine:
    """One line as a runner sent it; `seq` is 0 until devicelab numbers it."""

    at: datetime
    level: LogLevel
    message: str
    device_id: str | None = None
    test_case_id: str | None = None
    seq: int = 0

    @property
    def size(self) -> int:
        """What the line costs against the run's byte limit: its message in UTF-8."""
        return len(self.message.encode("utf-8", "replace"))


@dataclass(frozen=True)
class LogTotals:
    """How much of a run's log is stored: lines (the last sequence number), bytes, and
    whether the log has been cut."""

    lines: int = 0
    bytes: int = 0
    truncated: bool = False
    purged_at: datetime | None = None  # when the lines were purged (only the marker is left)


@dataclass(frozen=True)
class LogLimits:
    max_lines: int
    max_bytes: int

    def __post_init__(self) -> None:
        if self.max_lines < 1 or self.max_bytes < 1:
            raise ValueError("log limits must be at least 1")


@dataclass(frozen=True)
class AppendedLines:
    """What became of a batch: the lines stored (numbered, the marker included), how many
    were dropped, and the run's totals afterwards."""

    stored: tuple[LogLine, ...]
    dropped: int
    totals: LogTotals


def truncation_marker(limits: LogLimits) -> str:
    return (
        f"[devicelab] log truncated: this run reached its limit of {limits.max_lines} lines "
        f"or {limits.max_bytes} bytes; later lines were dropped"
    )


def check_batch(lines: Sequence[LogLine], device_ids: set[str], case_ids: set[str]) -> None:
    """A batch is refused whole (nothing stored) when it is too long, a line is too long, or
    a line names a device or test case that is not part of the run."""
    if len(lines) > MAX_BATCH_LINES:
        raise InvalidValue("lines", f"at most {MAX_BATCH_LINES} lines per batch")
    for n, line in enumerate(lines):
        if len(line.message) > MAX_MESSAGE_CHARS:
            raise InvalidValue(
                f"lines[{n}].message", f"at most {MAX_MESSAGE_CHARS} characters; split the line"
            )
        if line.device_id is not None and line.device_id not in device_ids:
            raise InvalidValue(f"lines[{n}].device_id", "is not a device of this run")
        if line.test_case_id is not None and line.test_case_id not in case_ids:
            raise InvalidValue(f"lines[{n}].test_case_id", "is not a test case of this run")


def append_lines(
    totals: LogTotals, lines: Sequence[LogLine], limits: LogLimits, now: datetime
) -> AppendedLines:
    """Number the lines after those stored, keep what fits in the limits, and cut the log
    with one marker line at the first line that does not fit."""
    if totals.truncated:
        return AppendedLines((), len(lines), totals)
    stored: list[LogLine] = []
    count, size = totals.lines, totals.bytes
    for n, line in enumerate(lines):
        if count + 1 > limits.max_lines or size + line.size > limits.max_bytes:
            marker = LogLine(
                at=now,
                level=LogLevel.WARNING,
                message=truncation_marker(limits),
                seq=count + 1,
            )
            stored.append(marker)
            # the marker is stored beyond the limits: it is the one line that says so
            after = LogTotals(count + 1, size + marker.size, truncated=True)
            return AppendedLines(tuple(stored), len(lines) - n, after)
        count, size = count + 1, size + line.size
        stored.append(replace(line, seq=count))
    return AppendedLines(tuple(stored), 0, LogTotals(count, size, False))


def describe_age(age: timedelta) -> str:
    """`90 days`, `12 hours`, `1 minute`: the largest unit the age is a whole number of."""
    seconds = int(age.total_seconds())
    unit, count = "second", seconds
    for name, size in (("minute", 60), ("hour", 3600), ("day", 86400)):
        if seconds % size == 0:
            unit, count = name, seconds // size
    return f"{count} {unit}{'' if count == 1 else 's'}"


def purge_marker(removed: int, now: datetime, age: timedelta) -> str:
    return (
        f"[devicelab] log purged: devicelab removed {removed} lines on {now.date().isoformat()} "
        f"because the run finished more than {describe_age(age)} ago"
    )


@dataclass(frozen=True)
class PurgedLog:
    """The marker line that stands for a purged log and the run's totals afterwards."""

    marker: LogLine
    totals: LogTotals


def purge_log(totals: LogTotals, removed: int, now: datetime, age: timedelta) -> PurgedLog:
    """The marker of a log whose `removed` lines went: numbered after the last line stored,
    so that reading on after any line seen before shows it; the totals count what is left."""
    marker = LogLine(
        at=now,
        level=LogLevel.WARNING,
        message=purge_marker(removed, now, age),
        seq=totals.lines + 1,
    )
    after = LogTotals(marker.seq, marker.size, totals.truncated, purged_at=now)
    return PurgedLog(marker, after)
