"""Artifacts as files under one directory (DEVICELAB_ARTIFACT_DIR): the embedded default,
for one machine (or a directory every API process mounts).

A file is named by its key only (devicelab's id, never the name a runner gave), two levels
deep by the key's first characters so that no directory grows huge. It is written to a
temporary name first and renamed once complete, so a reader never sees half a file and a
failed upload leaves nothing."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

READ_CHUNK_BYTES = 256 * 1024
_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class FilesystemArtifactStorage:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not an artifact key: {key!r}")
        return self.directory / key[:2] / key

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> Iterator[bytes]:
        try:
            source = self._path(key).open("rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        return _chunks_of(source)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def _chunks_of(source) -> Iterator[bytes]:
    with source:
        while chunk := source.read(READ_CHUNK_BYTES):
            yield chunk
