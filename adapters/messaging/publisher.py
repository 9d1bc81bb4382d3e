"""Publishing runner messages with kombu: persistent, confirmed by the broker, bounded.

Every publish either returns after the broker has taken the message (publisher confirms on
RabbitMQ; a committed row on the embedded transport) or raises PublishFailed within a bounded
time, so the relay never hangs on a broker that is away."""

from __future__ import annotations

import logging
import threading
from typing import Any

from kombu import Connection

from adapters.messaging.topology import JOB_ROUTING_KEY, Topology, supports_fanout
from application.errors import PublishFailed
from application.job_contract import CONTROL_KINDS, JOB_KIND

log = logging.getLogger(__name__)


def open_connection(broker_url: str, connect_timeout_s: float = 3) -> Connection:
    if supports_fanout(broker_url):
        return Connection(
            broker_url,
            connect_timeout=connect_timeout_s,
            heartbeat=30,
            transport_options={"confirm_publish": True},
        )
    # kombu passes transport options of the SQLAlchemy transport to create_engine
    return Connection(broker_url, connect_timeout=connect_timeout_s)


class KombuPublisher:
    def __init__(
        self,
        broker_url: str,
        topology: Topology,
        confirm_timeout_s: float = 5,
        connect_timeout_s: float = 3,
        max_retries: int = 2,
    ) -> None:
        self.broker_url = broker_url
        self.topology = topology
        self.confirm_timeout_s = confirm_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_retries = max_retries
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        with self._lock:
            try:
                self._publish(kind, payload)
            except PublishFailed:
                self._reset()
                raise
            except Exception as error:  # any transport error means: not published
                self._reset()
                raise PublishFailed(f"{type(error).__name__}: {error}") from error

    def _publish(self, kind: str, payload: dict[str, Any]) -> None:
        connection = self._connect()
        producer = connection.Producer(serializer="json")
        retry_policy = {
            "max_retries": self.max_retries,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 1,
        }
        if kind == JOB_KIND:
            producer.publish(
                payload,
                exchange=self.topology.job_exchange,
                routing_key=JOB_ROUTING_KEY,
                declare=[self.topology.jobs, self.topology.dead_letters],
                delivery_mode=2,
                retry=True,
                retry_policy=retry_policy,
                timeout=self.confirm_timeout_s,
                confirm_timeout=self.confirm_timeout_s,
                headers={"devicelab-kind": kind},
                message_id=str(payload.get("run_id", "")),
            )
        elif kind in CONTROL_KINDS:
            if not supports_fanout(self.broker_url):
                # no fanout on the embedded transport: runners learn of a cancellation from
                # the 409 their next progress report gets, of a drain from their next claim
                return
            producer.publish(
                payload,
                exchange=self.topology.control,
                routing_key="",
                declare=[self.topology.control],
                delivery_mode=2,
                retry=True,
                retry_policy=retry_policy,
                timeout=self.confirm_timeout_s,
                confirm_timeout=self.confirm_timeout_s,
                headers={"devicelab-kind": kind},
            )
        else:
            raise PublishFailed(f"no route for message kind {kind!r}")

    def _connect(self) -> Connection:
        if self._connection is None:
            connection = open_connection(self.broker_url, self.connect_timeout_s)
            connection.ensure_connection(max_retries=1, timeout=self.connect_timeout_s)
            self._connection = connection
        return self._connection

    def _reset(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # already broken; nothing more to release
                log.debug("closing a broken broker connection failed", exc_info=True)
            self._connection = None

    def close(self) -> None:
        with self._lock:
            self._reset()


class BrokerCheck:
    """Readiness: can we open a connection to the broker? Without it the API still serves
    (a started run's job waits in the outbox), so it only degrades readiness."""

    name = "broker"
    critical = False

    def __init__(self, broker_url: str, timeout_s: float = 2) -> None:
        self.broker_url = broker_url
        self.timeout_s = timeout_s

    def check(self) -> str | None:
        connection = open_connection(self.broker_url, self.timeout_s)
        try:
            connection.ensure_connection(max_retries=1, timeout=self.timeout_s)
        finally:
            connection.release()
        return None
