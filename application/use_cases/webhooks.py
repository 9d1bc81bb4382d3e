"""Webhooks: subscribe a URL to lab events; the worker turns the change feed into deliveries
(one per subscription and event, in the transaction that moves its position in the feed) and
sends the due ones, signed, retrying with backoff for a bounded time.

Every change of a run or device is on the change feed, written in the transaction of the
change: a delivery is derived from it, never from a request that may be lost, so an event is
neither lost while the receiver is down nor announced twice (a delivery is unique per
subscription and event). The dispatcher starts at the end of the feed the first time: no
history is announced."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from application.errors import NotFound
from application.ports import Clock, IdGenerator, UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory
from application.use_cases.live_updates import ChangeCursor
from application.webhook_ports import HostResolver, SendFailed, WebhookSender
from domain.devices import Device, DeviceStatus
from domain.errors import InvalidValue
from domain.holds import Hold
from domain.plans import PlanRun
from domain.test_runs import RunStatus, TestRun
from domain.webhooks import (
    Delivery,
    DeliveryStatus,
    RetryPolicy,
    Subscription,
    TargetPolicy,
    WebhookEvent,
    signature,
)

USER_AGENT = "devicelab-webhooks"


@dataclass(frozen=True)
class WebhookActor:
    user_id: str
    email: str
    is_admin: bool


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def allowed_address(policy: TargetPolicy, resolver: HostResolver, url: str) -> str:
    """The address a delivery to `url` connects to; InvalidValue when the policy refuses the
    host or any address it resolves to (a name half inside the lab is refused whole)."""
    host = policy.check_url(url)
    try:
        addresses = resolver.addresses(host, _port(url))
    except SendFailed as error:
        raise InvalidValue("url", f"host {host} does not resolve: {error}") from None
    refused = policy.refused_addresses(host, addresses)
    if refused or not addresses:
        raise InvalidValue(
            "url",
            f"host {host} resolves to an address inside the lab's network "
            f"({', '.join(refused)}); list it in DEVICELAB_WEBHOOK_ALLOWED_HOSTS to allow it",
        )
    return addresses[0]


@dataclass(frozen=True)
class SubscribeRequest:
    url: str
    events: list[str]
    only_fail: bool = False
    description: str = ""


class Subscribe:
    """Admins and engineers subscribe; the secret is made here and shown once."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        ids: IdGenerator,
        policy: TargetPolicy,
        resolver: HostResolver,
    ) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids
        self.policy, self.resolver = policy, resolver

    def __call__(self, request: SubscribeRequest, actor: WebhookActor) -> Subscription:
        allowed_address(self.policy, self.resolver, request.url)
        try:
            events = tuple(WebhookEvent(e) for e in request.events)
        except ValueError as error:
            raise InvalidValue("events", str(error)) from None
        subscription = Subscription(
            id=self.ids.new_id(),
            owner_id=actor.user_id,
            owner_email=actor.email,
            url=request.url,
            events=events,
            secret="whsec_" + secrets.token_urlsafe(32),
            created_at=self.clock.now(),
            only_fail=request.only_fail,
            description=request.description,
        )
        with self.uow() as uow:
            uow.webhooks.add_subscription(subscription)
            uow.commit()
        return subscription


def _visible(uow: Any, subscription_id: str, actor: WebhookActor) -> Subscription:
    """Admins see every subscription; others only their own (another's is not found)."""
    subscription = uow.webhooks.get_subscription(subscription_id)
    if subscription is None or not (actor.is_admin or subscription.owner_id == actor.user_id):
        raise NotFound("webhook subscription", subscription_id)
    return subscription


class ListSubscriptions:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, actor: WebhookActor) -> list[Subscription]:
        with self.uow(read_only=True) as uow:
            return uow.webhooks.list_subscriptions(None if actor.is_admin else actor.user_id)


class GetSubscription:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, subscription_id: str, actor: WebhookActor) -> Subscription:
        with self.uow(read_only=True) as uow:
            return _visible(uow, subscription_id, actor)


class Unsubscribe:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self, subscription_id: str, actor: WebhookActor) -> None:
        with self.uow() as uow:
            _visible(uow, subscription_id, actor)
            uow.webhooks.remove_subscription(subscription_id)
            uow.commit()


class ListDeliveries:
    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(
        self, subscription_id: str, actor: WebhookActor, limit: int = 50
    ) -> list[Delivery]:
        with self.uow(read_only=True) as uow:
            _visible(uow, subscription_id, actor)
            return uow.webhooks.list_deliveries(subscription_id, limit)


def _delivery(
    ids: IdGenerator,
    subscription: Subscription,
    event: WebhookEvent,
    key: str,
    data: dict[str, Any],
    now: datetime,
) -> Delivery:
    delivery_id = ids.new_id()
    payload = {
        "id": delivery_id,
        "event": event.value,
        "created_at": now.isoformat(),
        "subscription_id": subscription.id,
        "data": data,
    }
    return Delivery(delivery_id, subscription.id, event, key, payload, now, now)


class Ping:
    """A ping delivery, sent by the worker like any other (see the delivery log)."""

    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator) -> None:
        self.uow, self.clock, self.ids = uow, clock, ids

    def __call__(self, subscription_id: str, actor: WebhookActor) -> Delivery:
        now = self.clock.now()
        with self.uow() as uow:
            subscription = _visible(uow, subscription_id, actor)
            delivery = _delivery(
                self.ids,
                subscription,
                WebhookEvent.PING,
                f"ping:{self.ids.new_id()}",
                {"message": "ping from devicelab", "by": actor.email},
                now,
            )
            uow.webhooks.add_delivery(delivery)
            uow.commit()
        return delivery


# -- events from the change feed -----------------------------------------------------------


def run_data(run: TestRun) -> dict[str, Any]:
    return {
        "run": {
            "id": run.id,
            "status": run.status.value,
            "verdict": run.verdict.value if run.verdict else None,
            "failure_reason": run.failure_reason,
            "started_by": run.started_by,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "test_cases": [{"id": c.id, "name": c.name} for c in run.test_cases],
            "devices": [
                {"id": d.id, "name": d.name, "firmware_version": d.firmware_version}
                for d in run.devices
            ],
            "environment": {"id": run.environment.id, "name": run.environment.name},
        }
    }


def device_data(device: Device) -> dict[str, Any]:
    return {
        "device": {
            "id": device.id,
            "name": device.name,
            "model": device.model,
            "status": device.status.value,
            "health": device.health.value,
            "last_seen_at": device.last_seen_at.isoformat() if device.last_seen_at else None,
        }
    }


def health_bad_event(device: Device) -> tuple[str, dict[str, Any]] | None:
    """The key and data of `device.health_bad` when the device is bad: one per time it went
    bad (the key holds when), however often the device changes while it stays bad."""
    note = device.health_note
    if not device.is_bad or note is None:
        return None
    data = device_data(device)
    data["device"]["health_run_id"] = note.run_id
    data["device"]["health_reason"] = note.reason
    return f"device.health_bad:{device.id}:{note.since.isoformat()}", data


def run_events(run: TestRun) -> list[tuple[WebhookEvent, str]]:
    if not run.status.finished:
        return []
    events = [(WebhookEvent.RUN_FINISHED, f"run.finished:{run.id}")]
    if run.status in (RunStatus.FAILED, RunStatus.ABORTED):
        events.append((WebhookEvent.RUN_FAILED, f"run.failed:{run.id}"))
    return events


class DispatchWebhookEvents:
    """One pass over the change feed since the dispatcher's position: the deliveries of each
    finished run and each device that went offline, for every subscription that wants them
    and existed when it happened, written with the new position in one transaction."""

    def __init__(self, uow: UowFactory, clock: Clock, ids: IdGenerator, batch: int = 500) -> None:
        self.uow, self.clock, self.ids, self.batch = uow, clock, ids, batch

    def __call__(self) -> int:
        now = self.clock.now()
        made = 0
        with self.uow() as uow:
            hooks = uow.webhooks
            stored = hooks.dispatch_cursor()
            if stored is None:
                hooks.set_dispatch_cursor(uow.changes.latest_id(), [])
                uow.commit()
                return 0
            # ids are handed out before commit: look behind the position for late commits,
            # skipping what an earlier pass handled
            cursor = ChangeCursor(stored[0])
            cursor.seen = set(stored[1])
            window = max(0, cursor.position - ChangeCursor.LOOKBACK)
            changes = cursor.fresh(uow.changes.since(window, self.batch + ChangeCursor.LOOKBACK))
            if not changes:
                return 0
            subscriptions = hooks.list_subscriptions()
            hooks.set_dispatch_cursor(cursor.position, sorted(cursor.seen))
            if not subscriptions:
                uow.commit()
                return 0
            runs = {c.entity_id for c in changes if c.kind == "run"}
            devices = {c.entity_id for c in changes if c.kind == "device" and not c.deleted}
            announced = dict(hooks.announced_statuses(sorted(devices))) if devices else {}
            for run_id in sorted(runs):
                run = uow.test_runs.get(run_id)
                if run is None:
                    continue
                for event, key in run_events(run):
                    made += self._offer(
                        hooks,
                        subscriptions,
                        event,
                        key,
                        run_data(run),
                        run.finished_at or now,
                        now,
                        run.verdict,
                    )
            for device_id in sorted(devices):
                device = uow.devices.get(device_id)
                if device is None:
                    continue
                bad = health_bad_event(device)
                if bad is not None:
                    made += self._offer(
                        hooks,
                        subscriptions,
                        WebhookEvent.DEVICE_HEALTH_BAD,
                        bad[0],
                        bad[1],
                        device.health_note.since if device.health_note else now,
                        now,
                        None,
                    )
                status = device.status.value
                if status == announced.get(device_id):
                    continue
                hooks.set_announced_status(device_id, status)
                if device.status is DeviceStatus.OFFLINE:
                    last = max(c.id for c in changes if c.entity_id == device_id)
                    made += self._offer(
                        hooks,
                        subscriptions,
                        WebhookEvent.DEVICE_OFFLINE,
                        f"device.offline:{device_id}:{last}",
                        device_data(device),
                        now,
                        now,
                        None,
                    )
            uow.commit()
        return made

    def _offer(self, hooks, subscriptions, event, key, data, happened_at, now, verdict) -> int:
        made = 0
        for subscription in subscriptions:
            if subscription.created_at > happened_at:
                continue
            if not subscription.wants(event, verdict.value if verdict else None):
                continue
            if hooks.add_delivery(_delivery(self.ids, subscription, event, key, data, now)):
                made += 1
        return made


HOLD_WARNING_S = 900.0  # how long before a hold's expiry its holder's hook hears of it


def hold_data(hold: Hold) -> dict[str, Any]:
    return {
        "hold": {
            "id": hold.id,
            "holder": hold.holder,
            "reason": hold.reason,
            "started_at": hold.started_at.isoformat() if hold.started_at else None,
            "expires_at": hold.expires_at.isoformat() if hold.expires_at else None,
            "devices": [{"id": d.id, "name": d.name, "model": d.model} for d in hold.devices],
        }
    }


class AnnounceExpiringHolds:
    """`hold.expiring` for every active hold whose expiry is less than `warning_s` away:
    once per hold and expiry (an extension moves the expiry, so the new one is announced
    again when it comes near). Time makes this event, not a change, so it is not read from
    the change feed but from the active holds."""

    def __init__(
        self, uow: UowFactory, clock: Clock, ids: IdGenerator, warning_s: float = HOLD_WARNING_S
    ) -> None:
        self.uow, self.clock, self.ids, self.warning_s = uow, clock, ids, warning_s

    def __call__(self) -> int:
        now = self.clock.now()
        soon = now + timedelta(seconds=self.warning_s)
        made = 0
        with self.uow() as uow:
            hooks = uow.webhooks
            subscriptions = [
                s for s in hooks.list_subscriptions() if s.wants(WebhookEvent.HOLD_EXPIRING)
            ]
            if not subscriptions:
                return 0
            for hold in uow.holds.list_active():
                if hold.expires_at is None or not now < hold.expires_at <= soon:
                    continue
                key = f"hold.expiring:{hold.id}:{hold.expires_at.isoformat()}"
                for subscription in subscriptions:
                    if hooks.add_delivery(
                        _delivery(
                            self.ids,
                            subscription,
                            WebhookEvent.HOLD_EXPIRING,
                            key,
                            hold_data(hold),
                            now,
                        )
                    ):
                        made += 1
            uow.commit()
        return made


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: str
    status: DeliveryStatus
    error: str = ""


class DeliverWebhooks:
    """Send the due deliveries. Each is claimed (its next attempt moved `claim_s` ahead) in
    a short transaction, sent outside any transaction, and its outcome recorded in another;
    a sender that dies mid-way leaves it to be tried again once the claim lapses."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Clock,
        sender: WebhookSender,
        resolver: HostResolver,
        policy: TargetPolicy,
        retry: RetryPolicy,
        claim_s: float = 60,
        batch: int = 20,
    ) -> None:
        self.uow, self.clock, self.sender, self.resolver = uow, clock, sender, resolver
        self.policy, self.retry, self.claim_s, self.batch = policy, retry, claim_s, batch

    def __call__(self) -> list[DeliveryOutcome]:
        with self.uow() as uow:
            due = uow.webhooks.due_deliveries(self.clock.now(), self.batch)
            secrets_of = {}
            for delivery in due:
                delivery.claim(self.clock.now(), self.claim_s)
                uow.webhooks.update_delivery(delivery)
                subscription = uow.webhooks.get_subscription(delivery.subscription_id)
                secrets_of[delivery.id] = subscription
            uow.commit()
        return [self._send(d, secrets_of[d.id]) for d in due if secrets_of[d.id] is not None]

    def _send(self, delivery: Delivery, subscription: Subscription) -> DeliveryOutcome:
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Devicelab-Event": delivery.event.value,
            "X-Devicelab-Delivery": delivery.id,
            "Idempotency-Key": delivery.id,
            "X-Devicelab-Signature": signature(subscription.secret, body),
        }
        status_code, error = None, ""
        try:
            address = allowed_address(self.policy, self.resolver, subscription.url)
            status_code = self.sender.send(subscription.url, address, body, headers)
        except InvalidValue as refused:
            error = f"refused: {refused}"
        except SendFailed as failed:
            error, status_code = str(failed), failed.status_code
        with self.uow() as uow:
            current = uow.webhooks.get_delivery(delivery.id)
            if current is None:  # unsubscribed meanwhile
                return DeliveryOutcome(delivery.id, DeliveryStatus.GAVE_UP, "unsubscribed")
            now = self.clock.now()
            if error:
                current.failed(now, error[:1000], self.retry, status_code)
            else:
                current.succeeded(now, status_code or 200)
            uow.webhooks.update_delivery(current)
            uow.commit()
        return DeliveryOutcome(current.id, current.status, error)


class AnnouncePlanRunFinished:
    """`plan_run.finished` for every subscription that wants it, in the transaction that
    settles the plan run (SettlePlanRuns' `on_finished`): once per plan run."""

    def __init__(self, ids: IdGenerator, clock: Clock) -> None:
        self.ids, self.clock = ids, clock

    def __call__(self, uow: UnitOfWork, plan_run: PlanRun) -> None:
        now = self.clock.now()
        hooks = uow.webhooks
        data = {
            "plan_run": {
                "id": plan_run.id,
                "plan_id": plan_run.plan_id,
                "plan": plan_run.plan.name,
                "plan_version": plan_run.plan.version,
                "cause": plan_run.cause.kind.value,
                "verdict": plan_run.verdict.value if plan_run.verdict else None,
                "run_ids": [e.run_id for e in plan_run.runs],
                "finished_at": plan_run.finished_at.isoformat() if plan_run.finished_at else None,
            }
        }
        for subscription in hooks.list_subscriptions():
            if subscription.wants(WebhookEvent.PLAN_RUN_FINISHED):
                key = f"plan_run.finished:{plan_run.id}"
                hooks.add_delivery(
                    _delivery(
                        self.ids, subscription, WebhookEvent.PLAN_RUN_FINISHED, key, data, now
                    )
                )
