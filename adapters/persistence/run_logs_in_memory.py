"""In-memory twins of the run log and artifact repositories, and of the artifact storage:
writes are staged and applied on commit, as a database would."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from application.errors import AlreadyExists
from application.run_log_ports import LogFilter
from domain.artifacts import Artifact
from domain.run_logs import LogLine, LogTotals
from domain.test_runs import TestRun


@dataclass
class InMemoryRunLogTables:
    lines: dict[str, list[LogLine]] = field(default_factory=dict)
    totals: dict[str, LogTotals] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict)


class InMemoryRunLogs:
    def __init__(
        self, tables: InMemoryRunLogTables, runs: Callable[[], dict[str, TestRun]] = dict
    ) -> None:
        self.tables, self.runs = tables, runs  # runs: the committed runs, by id
        self.staged_lines: dict[str, list[LogLine]] = {}
        self.staged_totals: dict[str, LogTotals] = {}
        self.staged_deletes: set[str] = set()  # runs whose stored lines go on commit

    def totals_for_update(self, run_id: str) -> LogTotals:
        return self.totals(run_id)  # the unit of work's lock serialises batches already

    def append(self, run_id: str, lines: Iterable[LogLine], totals: LogTotals) -> None:
        self.staged_lines.setdefault(run_id, []).extend(lines)
        self.staged_totals[run_id] = totals

    def lines(self, run_id: str, where: LogFilter, after_seq: int, limit: int) -> list[LogLine]:
        stored = [] if run_id in self.staged_deletes else self.tables.lines.get(run_id, [])
        every = stored + self.staged_lines.get(run_id, [])
        found = [
            line
            for line in every
            if line.seq > after_seq
            and where.device_id in (None, line.device_id)
            and where.test_case_id in (None, line.test_case_id)
            and (where.min_level is None or line.level.rank >= where.min_level.rank)
        ]
        return found[:limit]

    def totals(self, run_id: str) -> LogTotals:
        if run_id in self.staged_totals:
            return self.staged_totals[run_id]
        return self.tables.totals.get(run_id, LogTotals())

    def purgeable(self, finished_before: datetime, limit: int) -> list[tuple[str, LogTotals]]:
        runs = self.runs()
        found = [
            (run, self.totals(run_id))
            for run_id in set(self.tables.totals) | set(self.staged_totals)
            if (run := runs.get(run_id)) is not None
            and run.status.finished
            and run.finished_at is not None
            and run.finished_at < finished_before
        ]
        found.sort(key=lambda pair: (pair[0].finished_at, pair[0].id))
        chosen = [(r.id, totals) for r, totals in found if totals.lines and not totals.purged_at]
        return chosen[:limit]

    def delete_lines(self, run_id: str) -> int:
        stored = [] if run_id in self.staged_deletes else self.tables.lines.get(run_id, [])
        count = len(stored) + len(self.staged_lines.pop(run_id, []))
        self.staged_deletes.add(run_id)
        return count

    def apply(self) -> None:
        for run_id in self.staged_deletes:
            self.tables.lines.pop(run_id, None)
        for run_id, lines in self.staged_lines.items():
            self.tables.lines.setdefault(run_id, []).extend(lines)
        self.tables.totals.update(self.staged_totals)
        self.clear()

    def clear(self) -> None:
        self.staged_lines, self.staged_totals, self.staged_deletes = {}, {}, set()


class InMemoryArtifacts:
    def __init__(self, tables: InMemoryRunLogTables) -> None:
        self.tables = tables
        self.staged: dict[str, Artifact | None] = {}

    def _all(self) -> list[Artifact]:
        merged = {**self.tables.artifacts, **self.staged}
        found = [a for a in merged.values() if a is not None]
        return sorted(found, key=lambda a: (a.created_at, a.id))

    def add(self, artifact: Artifact) -> None:
        if self.get_by_name(artifact.run_id, artifact.name) is not None:
            raise AlreadyExists("artifact", "name", artifact.name)
        self.staged[artifact.id] = artifact

    def get(self, run_id: str, artifact_id: str) -> Artifact | None:
        return next((a for a in self._all() if (a.run_id, a.id) == (run_id, artifact_id)), None)

    def get_by_name(self, run_id: str, name: str) -> Artifact | None:
        return next((a for a in self._all() if (a.run_id, a.name) == (run_id, name)), None)

    def of_run(self, run_id: str) -> list[Artifact]:
        return [a for a in self._all() if a.run_id == run_id]

    def bytes_of_run(self, run_id: str) -> int:
        return sum(a.size for a in self.of_run(run_id))

    def older_than(self, before: datetime, limit: int) -> list[Artifact]:
        return [a for a in self._all() if a.created_at < before][:limit]

    def remove(self, artifact_id: str) -> None:
        self.staged[artifact_id] = None

    def apply(self) -> None:
        for key, artifact in self.staged.items():
            if artifact is None:
                self.tables.artifacts.pop(key, None)
            else:
                self.tables.artifacts[key] = artifact
        self.clear()

    def clear(self) -> None:
        self.staged = {}


class InMemoryArtifactStorage:
    """Bytes by key, kept as the chunks they came in."""

    def __init__(self) -> None:
        self.blobs: dict[str, list[bytes]] = {}
        self.lock = threading.Lock()

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        kept = [bytes(chunk) for chunk in chunks]  # an error here stores nothing
        with self.lock:
            self.blobs[key] = kept

    def read(self, key: str) -> Iterator[bytes]:
        with self.lock:
            chunks = list(self.blobs[key])
        return iter(chunks)

    def delete(self, key: str) -> None:
        with self.lock:
            self.blobs.pop(key, None)
