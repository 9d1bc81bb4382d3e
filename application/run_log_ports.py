"""The ports of a run's logs and artifacts: where lines and artifact records are kept
(repositories of the lab's unit of work, `uow.run_logs` and `uow.artifacts`) and where the
artifacts' bytes are (`ArtifactStorage`, outside any transaction: a file may be larger than
anything one should hold in a database transaction's memory)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.artifacts import Artifact
from domain.run_logs import LogLevel, LogLine, LogTotals


@dataclass(frozen=True)
class LogFilter:
    device_id: str | None = None
    test_case_id: str | None = None
    min_level: LogLevel | None = None  # this level and the more severe ones


class RunLogRepository(Protocol):
    def totals_for_update(self, run_id: str) -> LogTotals:
        """The run's totals, locked until the transaction ends, so that two batches of one
        run are numbered one after the other (zeros for a run without lines)."""
        ...

    def append(self, run_id: str, lines: Iterable[LogLine], totals: LogTotals) -> None:
        """Store numbered lines and the run's new totals (`purged_at` included)."""
        ...

    def lines(self, run_id: str, where: LogFilter, after_seq: int, limit: int) -> list[LogLine]:
        """Lines with a sequence number above `after_seq`, in order."""
        ...

    def totals(self, run_id: str) -> LogTotals: ...

    def purgeable(self, finished_before: datetime, limit: int) -> list[tuple[str, LogTotals]]:
        """Runs that finished before `finished_before` and whose log has lines and has not
        been purged, with their totals, the earliest finished first."""
        ...

    def delete_lines(self, run_id: str) -> int:
        """Delete every line of the run (its totals stay as they are); how many there were."""
        ...


class ArtifactRepository(Protocol):
    def add(self, artifact: Artifact) -> None: ...
    def get(self, run_id: str, artifact_id: str) -> Artifact | None: ...
    def get_by_name(self, run_id: str, name: str) -> Artifact | None: ...
    def of_run(self, run_id: str) -> list[Artifact]:
        """Oldest first."""
        ...

    def bytes_of_run(self, run_id: str) -> int: ...
    def older_than(self, before: datetime, limit: int) -> list[Artifact]:
        """Artifacts stored before `before`, oldest first."""
        ...

    def remove(self, artifact_id: str) -> None: ...


class ArtifactStorage(Protocol):
    """The bytes of artifacts, by key. Writes and reads go chunk by chunk: no file is ever
    held whole in memory."""

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        """Store what `chunks` yields under `key`. When the iterable raises, nothing stays
        stored under the key and the error goes on to the caller."""
        ...

    def read(self, key: str) -> Iterator[bytes]:
        """The bytes stored under `key`, in chunks; KeyError when there are none."""
        ...

    def delete(self, key: str) -> None:
        """Idempotent: deleting what is not there is no error."""
        ...
