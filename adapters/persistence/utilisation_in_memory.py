"""The in-memory twin of the device status timelines (the SQL store reads them on the status
history's index)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.utilisation import Timeline


class InMemoryTimelines:
    def __init__(self, store: Any) -> None:
        self.store = store

    def timelines(self, start: datetime, end: datetime) -> list[Timeline]:
        found = []
        for device in sorted(self.store.devices.values(), key=lambda d: d.id):
            history = self.store.history.get(device.id, [])  # oldest first
            before = [c for c in history if c.at < start]
            within = [c for c in history if start <= c.at < end]
            if before:
                initial = before[-1].to_status
            elif within:
                initial = within[0].from_status
            else:
                initial = device.status
            since = max(start, device.created_at) if device.created_at else start
            changes = tuple((c.at, c.to_status) for c in within)
            found.append(Timeline(device.id, since, initial, changes))
        return found
