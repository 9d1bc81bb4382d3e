"""An in-memory broker twin: records what was published and can be switched off."""

from __future__ import annotations

import threading
from typing import Any

from application.errors import PublishFailed


class InMemoryPublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.available = True
        self._lock = threading.Lock()

    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        with self._lock:
            if not self.available:
                raise PublishFailed("the in-memory broker is switched off")
            self.published.append((kind, payload))

    def close(self) -> None:
        """Nothing to release."""
