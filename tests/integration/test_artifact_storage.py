"""The artifact stores on real backends: files in a directory, and chunks in the database
(SQLite and the real PostgreSQL, the store of several API replicas). Bytes come back as they
went in, chunk by chunk; an upload that breaks off leaves nothing; deleting is idempotent."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from adapters.artifact_storage.filesystem import FilesystemArtifactStorage
from adapters.persistence import tables as t
from adapters.persistence.artifact_chunks import DatabaseArtifactStorage
from adapters.persistence.engine import make_engine
from tests.integration.conftest import database_at_head

KEY = "0f5c2b7e-aaaa-bbbb-cccc-000000000001"


@pytest.fixture(
    params=["filesystem", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def storage(request, tmp_path):
    if request.param == "filesystem":
        yield FilesystemArtifactStorage(tmp_path / "artifacts")
        return
    engine = make_engine(database_at_head(request, request.param))
    yield DatabaseArtifactStorage(engine, chunk_bytes=1000)
    engine.dispose()


class Broken(Exception):
    pass


def test_bytes_come_back_as_they_went_in(storage):
    body = os.urandom(4321)
    storage.write(KEY, (body[i : i + 700] for i in range(0, len(body), 700)))
    chunks = list(storage.read(KEY))
    assert b"".join(chunks) == body
    if isinstance(storage, DatabaseArtifactStorage):
        assert [len(c) for c in chunks] == [1000, 1000, 1000, 1000, 321]


def test_an_empty_file_is_a_file(storage):
    storage.write(KEY, iter(()))
    assert b"".join(storage.read(KEY)) == b""


def test_an_upload_that_breaks_off_leaves_nothing(storage, tmp_path):
    def chunks():
        yield b"x" * 2500
        raise Broken()

    with pytest.raises(Broken):
        storage.write(KEY, chunks())
    with pytest.raises(KeyError):
        storage.read(KEY)
    if isinstance(storage, FilesystemArtifactStorage):
        assert [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == []
    else:
        with storage.engine.connect() as connection:
            count = connection.execute(sa.select(sa.func.count()).select_from(t.artifact_chunks))
            assert count.scalar_one() == 0


def test_delete_is_idempotent(storage):
    storage.write(KEY, [b"abc"])
    storage.delete(KEY)
    storage.delete(KEY)
    with pytest.raises(KeyError):
        storage.read(KEY)


def test_the_filesystem_store_takes_only_its_own_keys(tmp_path):
    storage = FilesystemArtifactStorage(tmp_path)
    with pytest.raises(ValueError):
        storage.write("../../etc/passwd", [b"x"])
