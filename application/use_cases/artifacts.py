"""Files a runner uploads with a run: stored chunk by chunk with their size and sha256,
within a per-file and a per-run budget; listed and downloaded by any reader; purged by age.

The bytes go to the storage before the record goes to the database, and a record is only
written for bytes completely stored: an upload that breaks off, goes over a budget or loses
a race leaves neither a record nor bytes. (A process killed between the two leaves bytes
without a record, which nobody can reach; never a record without bytes.)"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from application.errors import AlreadyExists, NotFound, TooLarge
from application.ports import Clock, IdGenerator, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from application.run_log_ports import ArtifactStorage
from domain.artifacts import Artifact, artifact_name, content_type
from domain.errors import InvalidValue, RunAlreadyFinished
from domain.test_runs import TestRun

PURGE_BATCH = 500


@dataclass(frozen=True)
class ArtifactUpload:
    name: str
    content_type: str | None = None
    device_id: str | None = None
    test_case_id: str | None = None


@dataclass(frozen=True)
class StoredArtifact:
    artifact: Artifact
    created: bool  # False: the same file under the same name was already stored


def _run(uow: UnitOfWork, run_id: str) -> TestRun:
    run = uow.test_runs.get(run_id)
    if run is None:
        raise NotFound("test run", run_id)
    return run


class _Measured:
    """The chunks passed through, counted and hashed; TooLarge as soon as they exceed
    `allowance` (the rest is never read)."""

    def __init__(self, chunks: Iterable[bytes], allowance: int, why: str) -> None:
        self.chunks, self.allowance, self.why = chunks, allowance, why
        self.size, self.hash = 0, hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.size += len(chunk)
            if self.size > self.allowance:
                raise TooLarge(self.why)
            self.hash.update(chunk)
            yield chunk


class StoreArtifact:
    def __init__(
        self,
        uow: UowFactory,
        storage: ArtifactStorage,
        clock: Clock,
        ids: IdGenerator,
        max_bytes: int,
        max_bytes_per_run: int,
    ) -> None:
        self.uow, self.storage, self.clock, self.ids = uow, storage, clock, ids
        self.max_bytes, self.max_bytes_per_run = max_bytes, max_bytes_per_run

    def _check(self, uow: UnitOfWork, run_id: str, upload: ArtifactUpload) -> int:
        """Refuse what can be refused before a byte is read; the bytes the run has stored."""
        run = _run(uow, run_id)
        if run.status.finished:
            raise RunAlreadyFinished(f"test run {run_id} has finished; it takes no artifacts")
        if upload.device_id is not None and upload.device_id not in {d.id for d in run.devices}:
            raise InvalidValue("device_id", "is not a device of this run")
        case_ids = {c.id for c in run.test_cases}
        if upload.test_case_id is not None and upload.test_case_id not in case_ids:
            raise InvalidValue("test_case_id", "is not a test case of this run")
        return uow.artifacts.bytes_of_run(run_id)

    def __call__(
        self, run_id: str, upload: ArtifactUpload, chunks: Iterable[bytes]
    ) -> StoredArtifact:
        name, media_type = artifact_name(upload.name), content_type(upload.content_type)
        with self.uow(read_only=True) as uow:
            used = self._check(uow, run_id, upload)
        room = self.max_bytes_per_run - used
        if room <= self.max_bytes:
            allowance = max(0, room)
            why = f"the run's artifacts may hold {self.max_bytes_per_run} bytes in all"
        else:
            allowance = self.max_bytes
            why = f"an artifact may hold at most {self.max_bytes} bytes"
        key = self.ids.new_id()
        measured = _Measured(chunks, allowance, why)
        self.storage.write(key, measured)
        try:
            return self._record(run_id, upload, key, name, media_type, measured)
        except BaseException:
            self.storage.delete(key)
            raise

    def _record(
        self,
        run_id: str,
        upload: ArtifactUpload,
        key: str,
        name: str,
        media_type: str,
        measured: _Measured,
    ) -> StoredArtifact:
        digest = measured.hash.hexdigest()
        with self.uow() as uow:
            used = self._check(uow, run_id, upload)  # again: the run may have moved on
            same_name = uow.artifacts.get_by_name(run_id, name)
            if same_name is not None:
                if (same_name.sha256, same_name.size) != (digest, measured.size):
                    raise AlreadyExists("artifact", "name", name, existing_id=same_name.id)
                self.storage.delete(key)  # a runner's retry: the first copy stays
                return StoredArtifact(same_name, created=False)
            if used + measured.size > self.max_bytes_per_run:
                raise TooLarge(f"the run's artifacts may hold {self.max_bytes_per_run} bytes")
            artifact = Artifact(
                id=key,
                run_id=run_id,
                name=name,
                content_type=media_type,
                size=measured.size,
                sha256=digest,
                created_at=self.clock.now(),
                device_id=upload.device_id,
                test_case_id=upload.test_case_id,
            )
            uow.artifacts.add(artifact)
            uow.commit()
        return StoredArtifact(artifact, created=True)


class ListArtifacts:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, run_id: str) -> list[Artifact]:
        with self.uow(read_only=True) as uow:
            _run(uow, run_id)
            return uow.artifacts.of_run(run_id)


class OpenArtifact:
    """An artifact's record and its bytes, in chunks."""

    def __init__(self, uow: UowFactory, storage: ArtifactStorage) -> None:
        self.uow, self.storage = uow, storage

    def __call__(self, run_id: str, artifact_id: str) -> tuple[Artifact, Iterator[bytes]]:
        with self.uow(read_only=True) as uow:
            artifact = uow.artifacts.get(run_id, artifact_id)
        if artifact is None:
            raise NotFound("artifact", artifact_id)
        try:
            return artifact, self.storage.read(artifact.id)
        except KeyError:
            raise NotFound("artifact", artifact_id) from None


class PurgeArtifacts:
    """Delete the artifacts stored longer ago than `older_than`: records first (committed in
    batches), then their bytes. Returns what was removed, oldest first."""

    def __init__(self, uow: UowFactory, storage: ArtifactStorage, clock: Clock) -> None:
        self.uow, self.storage, self.clock = uow, storage, clock

    def __call__(self, older_than: timedelta) -> list[Artifact]:
        if older_than <= timedelta(0):
            raise InvalidValue("older_than", "must be a positive age")
        before = self.clock.now() - older_than
        removed: list[Artifact] = []
        while True:
            with self.uow() as uow:
                batch = uow.artifacts.older_than(before, PURGE_BATCH)
                for artifact in batch:
                    uow.artifacts.remove(artifact.id)
                uow.commit()
            for artifact in batch:
                self.storage.delete(artifact.id)
            removed.extend(batch)
            if len(batch) < PURGE_BATCH:
                return removed
