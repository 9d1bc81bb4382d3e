"""Id generators: random UUIDs in production, a counter where tests want stable ids."""

from __future__ import annotations

import itertools
import threading
import uuid


class UuidGenerator:
    def new_id(self) -> str:
        return str(uuid.uuid4())


class SequentialIds:
    def __init__(self, prefix: str = "id") -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.prefix = prefix

    def new_id(self) -> str:
        with self._lock:
            return f"{self.prefix}-{next(self._counter):06d}"
