"""Webhooks: subscriptions of a URL to lab events, and the deliveries made for them.

A delivery is made once per subscription and event (its `event_key` says which event), kept
until the receiver has taken it (a 2xx answer) or the retry time is up, and retried with
exponential backoff in between. Which hosts a subscription may name is the lab's policy
(`TargetPolicy`): only those an admin listed, and never an address inside the lab's network
(loopback, link-local, private, ...) unless that very host or address is listed."""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from domain.errors import InvalidValue


class WebhookEvent(enum.StrEnum):
    RUN_FINISHED = "run.finished"  # completed, failed or aborted (with only_fail: verdict fail)
    RUN_FAILED = "run.failed"  # the run failed or was aborted
    DEVICE_OFFLINE = "device.offline"
    DEVICE_HEALTH_BAD = "device.health_bad"  # a health check failed: out of booking
    HOLD_EXPIRING = "hold.expiring"
    PLAN_RUN_FINISHED = "plan_run.finished"  # every run of a test plan's start has ended
    PING = "ping"  # asked for by the subscription's owner; every subscription takes it


SUBSCRIBABLE = tuple(e for e in WebhookEvent if e is not WebhookEvent.PING)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # not taken yet: it will be tried (again)
    DELIVERED = "delivered"
    GAVE_UP = "gave_up"  # the retry time ran out


@dataclass(frozen=True)
class RetryPolicy:
    first_delay_s: float = 10.0
    max_delay_s: float = 3600.0
    retry_for_s: float = 24 * 3600.0

    def delay_after(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.max_delay_s, self.first_delay_s * 2 ** (attempts - 1)))


@dataclass
class Subscription:
    id: str
    owner_id: str
    owner_email: str
    url: str
    events: tuple[WebhookEvent, ...]
    secret: str
    created_at: datetime
    only_fail: bool = False  # run.finished only for runs whose verdict is fail
    description: str = ""

    def __post_init__(self) -> None:
        events = tuple(dict.fromkeys(WebhookEvent(e) for e in self.events))
        if not events:
            raise InvalidValue("events", "subscribe to at least one event")
        if WebhookEvent.PING in events:
            raise InvalidValue("events", "ping is sent on request, not subscribed to")
        self.events = events

    def wants(self, event: WebhookEvent, verdict: str | None = None) -> bool:
        if event is WebhookEvent.PING:
            return True
        if event not in self.events:
            return False
        return not (event is WebhookEvent.RUN_FINISHED and self.only_fail and verdict != "fail")


@dataclass
class Delivery:
    id: str  # also the idempotency key the receiver sees, the same on every attempt
    subscription_id: str
    event: WebhookEvent
    event_key: str  # one delivery per (subscription, event_key)
    payload: dict[str, Any]
    created_at: datetime
    next_attempt_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_error: str = ""
    last_status_code: int | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None

    def claim(self, now: datetime, for_s: float) -> None:
        """Taken by a sender: no other sender tries it until `for_s` has passed."""
        self.next_attempt_at = now + timedelta(seconds=for_s)

    def succeeded(self, now: datetime, status_code: int) -> None:
        self.attempts += 1
        self.status, self.delivered_at = DeliveryStatus.DELIVERED, now
        self.last_attempt_at, self.last_status_code, self.last_error = now, status_code, ""

    def failed(
        self, now: datetime, error: str, policy: RetryPolicy, status_code: int | None = None
    ) -> None:
        self.attempts += 1
        self.last_attempt_at, self.last_status_code, self.last_error = now, status_code, error
        retry_at = now + policy.delay_after(self.attempts)
        if retry_at > self.created_at + timedelta(seconds=policy.retry_for_s):
            self.status = DeliveryStatus.GAVE_UP
        else:
            self.next_attempt_at = retry_at


def signature(secret: str, body: bytes) -> str:
    """What the X-Devicelab-Signature header carries: HMAC-SHA256 of the body, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- where deliveries may go ---------------------------------------------------------------


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


# IPv6 ranges that carry an IPv4 address a gateway may forward to: NAT64 (well-known and
# local-use prefixes), IPv4-compatible and IPv4-translated addresses. Refused unless listed,
# since the IPv4 address inside may be the lab's own.
_EMBEDDING_IPV4 = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)


def inside_network(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address a subscription must not reach by default: not a public unicast address,
    nor an IPv6 address that leads to an IPv4 one (mapped, 6to4, Teredo, NAT64, ...)."""
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _EMBEDDING_IPV4):
            return True
        inner = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if inner is not None:
            return True
    return not address.is_global or address.is_multicast


@dataclass(frozen=True)
class TargetPolicy:
    """`allowed`: host names (`hooks.example.com`, `*.example.com`), addresses and networks
    (`10.1.2.3`, `10.1.0.0/16`) from DEVICELAB_WEBHOOK_ALLOWED_HOSTS. A host must match one;
    an address inside the lab's network is refused unless the host is listed by its exact
    name, or the address is in a listed network."""

    allowed: tuple[str, ...] = ()
    networks: tuple[Any, ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TargetPolicy:
        names, networks = [], []
        for entry in (e.strip().lower() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.append(entry)
        return cls(tuple(names), tuple(networks))

    def check_url(self, url: str) -> str:
        """The URL's host once the URL is acceptable; InvalidValue saying why not."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            raise InvalidValue("url", "is not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidValue("url", "must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise InvalidValue("url", "must not carry a user name or password")
        host = parts.hostname.lower()
        if not self.host_allowed(host):
            raise InvalidValue(
                "url",
                f"host {host} is not allowed for webhooks (DEVICELAB_WEBHOOK_ALLOWED_HOSTS)",
            )
        return host

    def host_allowed(self, host: str) -> bool:
        address = _address(host)
        if address is not None:
            return host in self.allowed or any(address in n for n in self.networks)
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.allowed)

    def refused_addresses(self, host: str, addresses: Iterable[str]) -> list[str]:
        """Of what `host` resolved to, the addresses a delivery must not go to."""
        listed_exactly = host.lower() in self.allowed
        refused = []
        for text in addresses:
            address = _address(text)
            if address is None or (
                inside_network(address)
                and not (listed_exactly or any(address in n for n in self.networks))
            ):
                refused.append(text)
        return refused
