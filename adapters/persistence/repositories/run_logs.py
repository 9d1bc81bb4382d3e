"""A run's log lines and artifact records (application/run_log_ports.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository
from application.run_log_ports import LogFilter
from domain.artifacts import Artifact
from domain.run_logs import LogLevel, LogLine, LogTotals
from domain.test_runs import RunStatus

_FINISHED = [status.value for status in RunStatus if status.finished]


def _totals(row: sa.Row) -> LogTotals:
    return LogTotals(row.lines, row.bytes, row.truncated, row.purged_at)


class SqlRunLogs(SqlRepository):
    def totals_for_update(self, run_id: str) -> LogTotals:
        # make the row first (a no-op when it exists), so that there is a row to lock even
        # for a run's first batch; two first batches then wait for each other on it
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._execute(
            insert(t.run_log_totals)
            .values(run_id=run_id, lines=0, bytes=0, truncated=False)
            .on_conflict_do_nothing(index_elements=["run_id"])
        )
        query = sa.select(t.run_log_totals).where(t.run_log_totals.c.run_id == run_id)
        row = self._execute(query.with_for_update()).one()
        return _totals(row)

    def append(self, run_id: str, lines: Iterable[LogLine], totals: LogTotals) -> None:
        rows = [
            {
                "run_id": run_id,
                "seq": line.seq,
                "at": line.at,
                "level": line.level.value,
                "device_id": line.device_id,
                "test_case_id": line.test_case_id,
                "message": line.message,
            }
            for line in lines
        ]
        if rows:
            self._execute(t.run_log_lines.insert(), rows)
        self._execute(
            t.run_log_totals.update()
            .where(t.run_log_totals.c.run_id == run_id)
            .values(
                lines=totals.lines,
                bytes=totals.bytes,
                truncated=totals.truncated,
                purged_at=totals.purged_at,
            )
        )

    def lines(self, run_id: str, where: LogFilter, after_seq: int, limit: int) -> list[LogLine]:
        c = t.run_log_lines.c
        query = sa.select(t.run_log_lines).where(c.run_id == run_id, c.seq > after_seq)
        if where.device_id is not None:
            query = query.where(c.device_id == where.device_id)
        if where.test_case_id is not None:
            query = query.where(c.test_case_id == where.test_case_id)
        if where.min_level is not None:
            levels = [level.value for level in LogLevel if level.rank >= where.min_level.rank]
            query = query.where(c.level.in_(levels))
        rows = self._execute(query.order_by(c.seq).limit(limit)).all()
        return [
            LogLine(
                at=r.at,
                level=LogLevel(r.level),
                message=r.message,
                device_id=r.device_id,
                test_case_id=r.test_case_id,
                seq=r.seq,
            )
            for r in rows
        ]

    def totals(self, run_id: str) -> LogTotals:
        query = sa.select(t.run_log_totals).where(t.run_log_totals.c.run_id == run_id)
        row = self._execute(query).one_or_none()
        return LogTotals() if row is None else _totals(row)

    def purgeable(self, finished_before: datetime, limit: int) -> list[tuple[str, LogTotals]]:
        totals, runs = t.run_log_totals.c, t.test_runs.c
        query = (
            sa.select(t.run_log_totals)
            .join(t.test_runs, runs.id == totals.run_id)
            .where(
                totals.purged_at.is_(None),
                totals.lines > 0,
                runs.status.in_(_FINISHED),
                runs.finished_at < finished_before,
            )
            .order_by(runs.finished_at, runs.id)
            .limit(limit)
        )
        return [(row.run_id, _totals(row)) for row in self._execute(query).all()]

    def delete_lines(self, run_id: str) -> int:
        c = t.run_log_lines.c
        return self._execute(sa.delete(t.run_log_lines).where(c.run_id == run_id)).rowcount


def _artifact(row: sa.Row) -> Artifact:
    return Artifact(
        id=row.id,
        run_id=row.run_id,
        name=row.name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        created_at=row.created_at,
        device_id=row.device_id,
        test_case_id=row.test_case_id,
    )


class SqlArtifacts(SqlRepository):
    def add(self, artifact: Artifact) -> None:
        values = {
            "id": artifact.id,
            "run_id": artifact.run_id,
            "name": artifact.name,
            "content_type": artifact.content_type,
            "size": artifact.size,
            "sha256": artifact.sha256,
            "device_id": artifact.device_id,
            "test_case_id": artifact.test_case_id,
            "created_at": artifact.created_at,
        }
        with self._unique_name("artifact", "uq_run_artifacts_run_id_name", artifact.name):
            self._execute(t.run_artifacts.insert().values(**values))

    def get(self, run_id: str, artifact_id: str) -> Artifact | None:
        c = t.run_artifacts.c
        query = sa.select(t.run_artifacts).where(c.run_id == run_id, c.id == artifact_id)
        row = self._execute(query).one_or_none()
        return None if row is None else _artifact(row)

    def get_by_name(self, run_id: str, name: str) -> Artifact | None:
        c = t.run_artifacts.c
        query = sa.select(t.run_artifacts).where(c.run_id == run_id, c.name == name)
        row = self._execute(query).one_or_none()
        return None if row is None else _artifact(row)

    def of_run(self, run_id: str) -> list[Artifact]:
        c = t.run_artifacts.c
        query = sa.select(t.run_artifacts).where(c.run_id == run_id)
        return [_artifact(r) for r in self._execute(query.order_by(c.created_at, c.id)).all()]

    def bytes_of_run(self, run_id: str) -> int:
        c = t.run_artifacts.c
        query = sa.select(sa.func.coalesce(sa.func.sum(c.size), 0)).where(c.run_id == run_id)
        return int(self._execute(query).scalar_one())

    def older_than(self, before: datetime, limit: int) -> list[Artifact]:
        c = t.run_artifacts.c
        query = sa.select(t.run_artifacts).where(c.created_at < before)
        rows = self._execute(query.order_by(c.created_at, c.id).limit(limit)).all()
        return [_artifact(r) for r in rows]

    def remove(self, artifact_id: str) -> None:
        self._execute(sa.delete(t.run_artifacts).where(t.run_artifacts.c.id == artifact_id))
