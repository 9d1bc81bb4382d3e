"""Webhook subscriptions, deliveries and the dispatcher's state in SQL."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository
from domain.webhooks import Delivery, DeliveryStatus, Subscription, WebhookEvent


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        owner_id=row.owner_id,
        owner_email=row.owner_email,
        url=row.url,
        events=tuple(WebhookEvent(e) for e in row.events),
        secret=row.secret,
        created_at=row.created_at,
        only_fail=row.only_fail,
        description=row.description,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        subscription_id=row.subscription_id,
        event=WebhookEvent(row.event),
        event_key=row.event_key,
        payload=row.payload,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        last_status_code=row.last_status_code,
        last_attempt_at=row.last_attempt_at,
        delivered_at=row.delivered_at,
    )


def _delivery_values(delivery: Delivery) -> dict[str, Any]:
    return {
        "next_attempt_at": delivery.next_attempt_at,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "last_status_code": delivery.last_status_code,
        "last_attempt_at": delivery.last_attempt_at,
        "delivered_at": delivery.delivered_at,
    }


class SqlWebhooks(SqlRepository):
    def add_subscription(self, subscription: Subscription) -> None:
        self._execute(
            t.webhook_subscriptions.insert().values(
                id=subscription.id,
                owner_id=subscription.owner_id,
                owner_email=subscription.owner_email,
                url=subscription.url,
                events=[e.value for e in subscription.events],
                only_fail=subscription.only_fail,
                secret=subscription.secret,
                description=subscription.description,
                created_at=subscription.created_at,
            )
        )

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        table = t.webhook_subscriptions
        row = self._execute(sa.select(table).where(table.c.id == subscription_id)).first()
        return _subscription(row) if row else None

    def list_subscriptions(self, owner_id: str | None = None) -> list[Subscription]:
        table = t.webhook_subscriptions
        statement = sa.select(table).order_by(table.c.created_at, table.c.id)
        if owner_id is not None:
            statement = statement.where(table.c.owner_id == owner_id)
        return [_subscription(row) for row in self._execute(statement)]

    def remove_subscription(self, subscription_id: str) -> None:
        # explicitly: SQLite enforces the cascade only with its foreign keys switched on
        deliveries = t.webhook_deliveries
        self._execute(sa.delete(deliveries).where(deliveries.c.subscription_id == subscription_id))
        table = t.webhook_subscriptions
        self._execute(sa.delete(table).where(table.c.id == subscription_id))

    def add_delivery(self, delivery: Delivery) -> bool:
        table = t.webhook_deliveries
        taken = self._execute(
            sa.select(table.c.id).where(
                table.c.subscription_id == delivery.subscription_id,
                table.c.event_key == delivery.event_key,
            )
        ).first()
        if taken:
            return False
        # a second dispatcher racing for the same event fails its transaction on the unique
        # key and leaves the delivery to the first
        self._execute(
            table.insert().values(
                id=delivery.id,
                subscription_id=delivery.subscription_id,
                event=delivery.event.value,
                event_key=delivery.event_key,
                payload=delivery.payload,
                created_at=delivery.created_at,
                **_delivery_values(delivery),
            )
        )
        return True

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        table = t.webhook_deliveries
        row = self._execute(sa.select(table).where(table.c.id == delivery_id)).first()
        return _delivery(row) if row else None

    def update_delivery(self, delivery: Delivery) -> None:
        table = t.webhook_deliveries
        self._execute(
            table.update().where(table.c.id == delivery.id).values(**_delivery_values(delivery))
        )

    def list_deliveries(self, subscription_id: str, limit: int) -> list[Delivery]:
        table = t.webhook_deliveries
        rows = self._execute(
            sa.select(table)
            .where(table.c.subscription_id == subscription_id)
            .order_by(table.c.created_at.desc(), table.c.id.desc())
            .limit(limit)
        )
        return [_delivery(row) for row in rows]

    def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        table = t.webhook_deliveries
        statement = (
            sa.select(table)
            .where(
                table.c.status == DeliveryStatus.PENDING.value,
                table.c.next_attempt_at <= now,
            )
            .order_by(table.c.next_attempt_at, table.c.id)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            statement = statement.with_for_update(skip_locked=True)
        return [_delivery(row) for row in self._execute(statement)]

    def _state(self, keys: list[str]) -> dict[str, str]:
        table = t.webhook_state
        rows = self._execute(sa.select(table).where(table.c.key.in_(keys)))
        return {row.key: row.value for row in rows}

    def _set_state(self, key: str, value: str) -> None:
        table = t.webhook_state
        updated = self._execute(table.update().where(table.c.key == key).values(value=value))
        if updated.rowcount == 0:
            self._execute(table.insert().values(key=key, value=value))

    def dispatch_cursor(self) -> tuple[int, list[int]] | None:
        value = self._state(["cursor"]).get("cursor")
        if value is None:
            return None
        stored = json.loads(value)
        return int(stored["position"]), [int(i) for i in stored["seen"]]

    def set_dispatch_cursor(self, position: int, seen: list[int]) -> None:
        self._set_state("cursor", json.dumps({"position": position, "seen": sorted(seen)}))

    def announced_statuses(self, device_ids: list[str]) -> Mapping[str, str]:
        found = self._state([f"device:{i}" for i in device_ids])
        return {key.removeprefix("device:"): value for key, value in found.items()}

    def set_announced_status(self, device_id: str, status: str) -> None:
        self._set_state(f"device:{device_id}", status)
