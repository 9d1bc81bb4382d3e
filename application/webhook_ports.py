"""The ports webhooks need: where subscriptions and deliveries are kept (a repository of the
lab's unit of work, `uow.webhooks`), how a host name resolves, and how a delivery is sent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from domain.webhooks import Delivery, Subscription


class WebhookRepository(Protocol):
    def add_subscription(self, subscription: Subscription) -> None: ...
    def get_subscription(self, subscription_id: str) -> Subscription | None: ...
    def list_subscriptions(self, owner_id: str | None = None) -> list[Subscription]:
        """Oldest first; every owner's when `owner_id` is None."""
        ...

    def remove_subscription(self, subscription_id: str) -> None:
        """With its deliveries."""
        ...

    def add_delivery(self, delivery: Delivery) -> bool:
        """False (and nothing added) when the subscription has a delivery of that event."""
        ...

    def get_delivery(self, delivery_id: str) -> Delivery | None: ...
    def update_delivery(self, delivery: Delivery) -> None: ...
    def list_deliveries(self, subscription_id: str, limit: int) -> list[Delivery]:
        """Newest first."""
        ...

    def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, oldest first, locked for update."""
        ...

    def dispatch_cursor(self) -> tuple[int, list[int]] | None:
        """Where the dispatcher is in the change feed: the highest id it has handled, and the
        ids just below it it has handled too (see ChangeCursor); None before its first pass."""
        ...

    def set_dispatch_cursor(self, position: int, seen: list[int]) -> None: ...
    def announced_statuses(self, device_ids: list[str]) -> Mapping[str, str]:
        """The status each device had when the dispatcher last looked at it."""
        ...

    def set_announced_status(self, device_id: str, status: str) -> None: ...


class SendFailed(Exception):
    """The receiver could not be reached, or answered other than 2xx (`status_code`)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class HostResolver(Protocol):
    def addresses(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to; SendFailed when it does not resolve."""
        ...


class WebhookSender(Protocol):
    def send(self, url: str, address: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST `body` to `url`, connecting to `address` (one the policy allowed, so a name
        that resolves again differently cannot take the request elsewhere). The 2xx status
        code, or SendFailed."""
        ...
