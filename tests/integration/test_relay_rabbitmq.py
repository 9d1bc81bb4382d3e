"""The outbox relay against a real RabbitMQ: persistent, confirmed, exactly once in the
normal path, and nothing lost or hung while the broker is unreachable.

Each test uses its own exchange and queue names and deletes them afterwards."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

import pytest
from kombu import Connection

from adapters.auth.run_credentials import SignedRunCredentials
from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.messaging.publisher import KombuPublisher
from adapters.messaging.topology import Topology
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.errors import PublishFailed
from application.job_contract import JOB_KIND
from application.use_cases.catalog import (
    CreateEnvironment,
    CreateTestCase,
    CriterionInput,
    EnvironmentInput,
    TestCaseInput,
)
from application.use_cases.devices import RegisterDevice, RegisterDeviceRequest
from application.use_cases.relay import RelayOutbox
from application.use_cases.test_runs import StartTestRun, StartTestRunRequest
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.rabbitmq


def drain(url: str, topology: Topology, expect: int, within_s: float = 10) -> list[dict]:
    bodies: list[dict] = []
    with (
        Connection(url) as connection,
        connection.Consumer(
            [topology.jobs],
            accept=["json"],
            callbacks=[lambda body, message: (bodies.append(body), message.ack())],
        ),
    ):
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline and len(bodies) < expect:
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=0.5)
        # and make sure nothing more is coming
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=0.5)
    return bodies


class Lab:
    def __init__(self, publisher) -> None:
        self.store = InMemoryStore()
        self.clock = SettableClock()
        ids = SequentialIds()

        def uow(read_only: bool = False):
            return InMemoryUnitOfWork(self.store, read_only)

        register = RegisterDevice(uow, self.clock, ids)
        self.devices = [register(RegisterDeviceRequest(name=f"d{i}")).id for i in range(6)]
        case = CreateTestCase(uow, self.clock, ids)(
            TestCaseInput("c", [CriterionInput("v", "<", 1)], duration_s=1, timeout_s=60)
        ).id
        env = CreateEnvironment(uow, self.clock, ids)(EnvironmentInput("e")).id
        start = StartTestRun(uow, self.clock, ids)
        self.start = lambda i: start(StartTestRunRequest([case], env, [self.devices[i]])).id
        self.relay = RelayOutbox(
            uow, publisher, SignedRunCredentials("s" * 40), self.clock, "http://x", batch=10
        )


def test_jobs_are_published_persistently_and_exactly_once(rabbitmq_url, broker_names):
    publisher = KombuPublisher(rabbitmq_url, broker_names)
    lab = Lab(publisher)
    runs = [lab.start(i) for i in range(5)]
    assert lab.relay().sent == 5
    assert lab.relay().sent == 0
    bodies = drain(rabbitmq_url, broker_names, expect=5)
    assert sorted(b["run_id"] for b in bodies) == sorted(runs)
    publisher.close()


def test_broker_unreachable_then_back(rabbitmq_url, broker_names):
    proxy = TcpProxy("127.0.0.1", 5672).start()
    through_proxy = rabbitmq_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    publisher = KombuPublisher(
        through_proxy, broker_names, confirm_timeout_s=2, connect_timeout_s=1
    )
    lab = Lab(publisher)
    first = lab.start(0)
    assert lab.relay().sent == 1  # a working connection exists ...
    proxy.cut()  # ... and the broker goes away
    later = [lab.start(i) for i in range(1, 4)]  # starts still succeed: no broker involved
    began = time.monotonic()
    report = lab.relay()
    assert report.sent == 0 and report.failed == 3 and report.error
    assert time.monotonic() - began < 20  # bounded: the relay does not hang
    proxy.restore()
    for _ in range(10):
        if lab.relay().sent or not any(
            state["sent_at"] is None for state in lab.store.outbox_state.values()
        ):
            break
        time.sleep(0.2)
    while lab.relay().sent:
        pass
    bodies = drain(rabbitmq_url, broker_names, expect=4)
    assert sorted(b["run_id"] for b in bodies) == sorted([first, *later])
    publisher.close()
    proxy.cut()


def test_publishing_to_a_dead_port_fails_fast(broker_names):
    publisher = KombuPublisher(
        "amqp://guest:guest@127.0.0.1:1//", broker_names, confirm_timeout_s=1, connect_timeout_s=1
    )
    began = time.monotonic()
    with pytest.raises(PublishFailed):
        publisher.publish(JOB_KIND, {"run_id": "x", "deadline": "2026-01-01T00:00:00+00:00"})
    assert time.monotonic() - began < 15


def test_the_job_message_reaches_a_consumer_with_its_callback(rabbitmq_url, broker_names):
    publisher = KombuPublisher(rabbitmq_url, broker_names)
    lab = Lab(publisher)
    run_id = lab.start(0)
    lab.relay()
    (body,) = drain(rabbitmq_url, broker_names, expect=1)
    assert body["callback"]["base_url"] == f"http://x/api/runner/test-runs/{run_id}"
    verified = SignedRunCredentials("s" * 40).verify(
        body["callback"]["token"], lab.clock.now() + timedelta(seconds=1)
    )
    assert verified == run_id
    publisher.close()
