"""The in-memory twin of the webhook repository: staged writes, applied on commit."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.webhooks import Delivery, DeliveryStatus, Subscription


@dataclass
class InMemoryWebhookTables:
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # "cursor", "device:<id>"


class InMemoryWebhooks:
    def __init__(self, tables: InMemoryWebhookTables) -> None:
        self.tables = tables
        self.staged = InMemoryWebhookTables()
        self.removed: set[str] = set()

    def _subscriptions(self) -> dict[str, Subscription]:
        merged = {**self.tables.subscriptions, **self.staged.subscriptions}
        return {k: v for k, v in merged.items() if k not in self.removed}

    def _deliveries(self) -> dict[str, Delivery]:
        merged = {**self.tables.deliveries, **self.staged.deliveries}
        return {k: v for k, v in merged.items() if v.subscription_id not in self.removed}

    def add_subscription(self, subscription: Subscription) -> None:
        self.staged.subscriptions[subscription.id] = copy.deepcopy(subscription)

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        return copy.deepcopy(self._subscriptions().get(subscription_id))

    def list_subscriptions(self, owner_id: str | None = None) -> list[Subscription]:
        found = [s for s in self._subscriptions().values() if owner_id in (None, s.owner_id)]
        return copy.deepcopy(sorted(found, key=lambda s: (s.created_at, s.id)))

    def remove_subscription(self, subscription_id: str) -> None:
        self.removed.add(subscription_id)

    def add_delivery(self, delivery: Delivery) -> bool:
        taken = any(
            d.subscription_id == delivery.subscription_id and d.event_key == delivery.event_key
            for d in self._deliveries().values()
        )
        if not taken:
            self.staged.deliveries[delivery.id] = copy.deepcopy(delivery)
        return not taken

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        return copy.deepcopy(self._deliveries().get(delivery_id))

    def update_delivery(self, delivery: Delivery) -> None:
        self.staged.deliveries[delivery.id] = copy.deepcopy(delivery)

    def list_deliveries(self, subscription_id: str, limit: int) -> list[Delivery]:
        found = [d for d in self._deliveries().values() if d.subscription_id == subscription_id]
        found.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return copy.deepcopy(found[:limit])

    def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        due = [
            d
            for d in self._deliveries().values()
            if d.status is DeliveryStatus.PENDING and d.next_attempt_at <= now
        ]
        due.sort(key=lambda d: (d.next_attempt_at, d.id))
        return copy.deepcopy(due[:limit])

    def _state(self, key: str) -> Any:
        return self.staged.state.get(key, self.tables.state.get(key))

    def dispatch_cursor(self) -> tuple[int, list[int]] | None:
        return copy.deepcopy(self._state("cursor"))

    def set_dispatch_cursor(self, position: int, seen: list[int]) -> None:
        self.staged.state["cursor"] = (position, sorted(seen))

    def announced_statuses(self, device_ids: list[str]) -> Mapping[str, str]:
        found = {i: self._state(f"device:{i}") for i in device_ids}
        return {i: status for i, status in found.items() if status is not None}

    def set_announced_status(self, device_id: str, status: str) -> None:
        self.staged.state[f"device:{device_id}"] = status

    def apply(self) -> None:
        for subscription_id in self.removed:
            self.tables.subscriptions.pop(subscription_id, None)
            self.staged.subscriptions.pop(subscription_id, None)
            for key in [
                k for k, d in self.tables.deliveries.items() if d.subscription_id == subscription_id
            ]:
                del self.tables.deliveries[key]
        self.tables.subscriptions.update(self.staged.subscriptions)
        self.tables.deliveries.update(
            {
                k: d
                for k, d in self.staged.deliveries.items()
                if d.subscription_id not in self.removed
            }
        )
        self.tables.state.update(self.staged.state)
        self.clear()

    def clear(self) -> None:
        self.staged = InMemoryWebhookTables()
        self.removed = set()
