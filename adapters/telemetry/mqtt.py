"""Listens for device telemetry on an MQTT broker (paho-mqtt) and hands each report on.

- subscribes to a topic filter such as `lab/+/telemetry` (as an MQTT shared subscription
  `$share/<group>/<filter>` when a share group is set, so several listeners split the load),
  again after every reconnect;
- paho's network thread reconnects with exponential backoff (1 s doubling to 30 s) when the
  broker is away or drops the connection, also when it was not there at the start;
- a message that cannot be understood or recorded is logged and skipped: nothing a device
  publishes stops the listener. Warnings about one topic are logged at most once a minute;
- retained messages are skipped: they are old news, and counting them as a sign of life
  would bring long-dead devices back online whenever the listener (re)connects."""

from __future__ import annotations

import logging
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from adapters.telemetry.payload import BadTelemetry, parse_telemetry
from application.use_cases.telemetry import TelemetryOutcome, TelemetryRecorded, TelemetryReport
from domain.errors import DomainError

log = logging.getLogger(__name__)

WARNING_PERIOD_S = 60.0
MAX_WARNING_KEYS = 10_000


@dataclass(frozen=True)
class MqttOptions:
    url: str = "mqtt://127.0.0.1:1883"
    topic: str = "lab/+/telemetry"
    share_group: str = ""
    client_id: str = ""
    qos: int = 1
    keepalive_s: int = 30
    min_reconnect_s: float = 1.0
    max_reconnect_s: float = 30.0

    @property
    def subscription(self) -> str:
        return f"$share/{self.share_group}/{self.topic}" if self.share_group else self.topic


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"not an mqtt:// or mqtts:// URL: {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:  # never the password
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass
class ListenerCounts:
    received: int = 0
    handled: int = 0
    skipped: int = 0
    failed: int = 0


class MqttTelemetryListener:
    """`run()` blocks until `stop()` (which a signal handler may call)."""

    def __init__(
        self, options: MqttOptions, handle: Callable[[TelemetryReport], TelemetryRecorded]
    ) -> None:
        self.options, self.handle = options, handle
        self.address = BrokerAddress.from_url(options.url)
        self.counts = ListenerCounts()
        self.subscribed = threading.Event()  # set while subscribed; for readiness and tests
        self._stopping = threading.Event()
        self._warned_at: dict[str, float] = {}

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        client = self._client()
        log.info("telemetry: listening on %s %s", self.address, self.options.subscription)
        client.connect_async(self.address.host, self.address.port, self.options.keepalive_s)
        client.loop_start()
        try:
            self._stopping.wait()
        finally:
            client.disconnect()
            client.loop_stop()
            self.subscribed.clear()
            log.info(
                "telemetry stopped: %d messages, %d recorded, %d skipped, %d failed",
                self.counts.received,
                self.counts.handled,
                self.counts.skipped,
                self.counts.failed,
            )

    # -- paho callbacks (on paho's network thread) -----------------------------------------

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.options.client_id,
            clean_session=True,
        )
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(self.options.min_reconnect_s, self.options.max_reconnect_s)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("telemetry: %s refused the connection: %s", self.address, reason_code)
            return
        log.info("telemetry: connected to %s", self.address)
        client.subscribe(self.options.subscription, qos=self.options.qos)

    def _on_connect_fail(self, client, userdata) -> None:
        log.warning("telemetry: %s does not answer; trying again", self.address)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.subscribed.clear()
        if not self._stopping.is_set():
            log.warning("telemetry: lost %s (%s); reconnecting", self.address, reason_code)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(code.is_failure for code in reason_codes):
            log.error(
                "telemetry: the broker refused the subscription %s: %s",
                self.options.subscription,
                ", ".join(str(code) for code in reason_codes),
            )
            return
        self.subscribed.set()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        self.counts.received += 1
        if message.retain:
            self.counts.skipped += 1
            log.debug("telemetry: skipped a retained message on %s", message.topic)
            return
        try:
            report = parse_telemetry(self.options.topic, message.topic, message.payload)
            recorded = self.handle(report)
        except (BadTelemetry, DomainError) as error:  # e.g. a name the domain refuses
            self.counts.skipped += 1
            self._warn(message.topic, "skipped telemetry on %s: %s", message.topic, error)
        except Exception as error:  # the database away, ...: this report is lost, not us
            self.counts.failed += 1
            self._warn(
                message.topic,
                "could not record telemetry on %s: %s: %s",
                message.topic,
                type(error).__name__,
                error,
            )
        else:
            self.counts.handled += 1
            self._log_outcome(report, recorded)

    def _log_outcome(self, report: TelemetryReport, recorded: TelemetryRecorded) -> None:
        if recorded.outcome is TelemetryOutcome.REGISTERED:
            log.info("telemetry: device %s registered itself", report.device_name)
        elif recorded.outcome is TelemetryOutcome.UNKNOWN:
            self._warn(
                f"unknown:{report.device_name}",
                "telemetry from unknown device %s ignored: discovery is off",
                report.device_name,
            )
        else:
            log.debug("telemetry: %s from %s", recorded.outcome.value, report.device_name)

    def _warn(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._warned_at.get(key, -WARNING_PERIOD_S) >= WARNING_PERIOD_S:
            if len(self._warned_at) >= MAX_WARNING_KEYS:  # many topics or names: start over
                self._warned_at.clear()
            self._warned_at[key] = now
            log.warning(message, *args)
