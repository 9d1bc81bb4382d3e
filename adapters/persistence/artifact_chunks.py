"""Artifacts in the lab's database, in chunks of bytea (PostgreSQL) or BLOB (SQLite): what
several API replicas share without a file system or an object store between them.

Why chunks in a table rather than PostgreSQL large objects: a chunk row is an ordinary row,
so backups (pg_dump without --blobs), replication, and deleting go with the rest of the data,
and nothing is left behind when an upload fails (its transaction rolls back); large objects
live outside the tables, need `lo_unlink` (or vacuumlo) so as not to leak, and their access
rights are separate. Chunks of 256 KiB keep each row small enough for TOAST and memory, and
a download reads one chunk per short statement, so no transaction stays open while a slow
client reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.persistence import tables as t
from adapters.persistence.unit_of_work import unavailability_as_store_unavailable

ARTIFACT_CHUNK_BYTES = 256 * 1024


def _rechunked(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The same bytes in chunks of exactly `size` (the last one shorter); at least one,
    so that an empty artifact is stored too."""
    buffer = bytearray()
    sent = False
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
            sent = True
    if buffer or not sent:
        yield bytes(buffer)


class DatabaseArtifactStorage:
    def __init__(self, engine: Engine, chunk_bytes: int = ARTIFACT_CHUNK_BYTES) -> None:
        self.engine, self.chunk_bytes = engine, chunk_bytes

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        table = t.artifact_chunks
        with unavailability_as_store_unavailable(), self.engine.begin() as connection:
            connection.execute(sa.delete(table).where(table.c.artifact_key == key))
            for seq, chunk in enumerate(_rechunked(chunks, self.chunk_bytes)):
                connection.execute(table.insert().values(artifact_key=key, seq=seq, data=chunk))

    def _chunk(self, key: str, seq: int) -> bytes | None:
        table = t.artifact_chunks
        query = sa.select(table.c.data).where(table.c.artifact_key == key, table.c.seq == seq)
        with unavailability_as_store_unavailable(), self.engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none()

    def read(self, key: str) -> Iterator[bytes]:
        first = self._chunk(key, 0)
        if first is None:
            raise KeyError(key)
        return self._rest(key, first)

    def _rest(self, key: str, first: bytes) -> Iterator[bytes]:
        chunk: bytes | None = first
        seq = 0
        while chunk is not None:
            yield bytes(chunk)
            seq += 1
            chunk = self._chunk(key, seq)

    def delete(self, key: str) -> None:
        table = t.artifact_chunks
        with unavailability_as_store_unavailable(), self.engine.begin() as connection:
            connection.execute(sa.delete(table).where(table.c.artifact_key == key))
