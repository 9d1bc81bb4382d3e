"""The runner's job consumer against a real RabbitMQ (and the embedded SQLAlchemy transport):
prefetch 1, no ack before the result, redelivery after a runner dies, dead-lettering,
cancellation on the control exchange, graceful stop and reconnecting.

Each test uses its own exchange and queue names and deletes them afterwards. Callbacks go to a
fake devicelab on 127.0.0.1. Without RabbitMQ the RabbitMQ tests are skipped, except with CI=true,
where they fail."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Consumer, Producer

from adapters.messaging.job_consumer import (
    DEAD_REASON_HEADER,
    NOT_BEFORE_HEADER,
    ConsumerOptions,
    JobConsumer,
)
from adapters.messaging.topology import JOB_ROUTING_KEY, Topology
from application.job_contract import cancel_payload
from application.runner import Disposition, JobOutcome
from entrypoints.runner import build_runner
from entrypoints.settings import RunnerSettings, Settings
from tests.support.runner import callback_server, job_bytes, make_run
from tests.support.tcp_proxy import TcpProxy

RABBITMQ_URL = (
    os.environ.get("DEVICELAB_TEST_RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672//"
)
REPO = Path(__file__).resolve().parents[2]
WAIT_S = 15  # upper bound of every wait; reached only when something is broken

FAST = ConsumerOptions(
    poll_s=0.05, polling_interval_s=0.05, first_reconnect_delay_s=0.1, max_reconnect_delay_s=0.5
)


@pytest.fixture(scope="module")
def rabbitmq() -> str:
    connection = Connection(RABBITMQ_URL, connect_timeout=3)
    try:
        connection.ensure_connection(max_retries=1, timeout=3)
    except Exception as error:
        reason = f"RabbitMQ at {RABBITMQ_URL.split('@')[-1]} does not answer ({error})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    finally:
        connection.release()
    return RABBITMQ_URL


def unique_topology() -> Topology:
    suffix = uuid.uuid4().hex[:8]
    return Topology(
        exchange=f"test.{suffix}",
        job_queue=f"test.{suffix}.jobs",
        dead_letter_queue=f"test.{suffix}.dead",
        control_exchange=f"test.{suffix}.control",
    )


@pytest.fixture
def topology(rabbitmq) -> Iterator[Topology]:
    names = unique_topology()
    yield names
    with Connection(rabbitmq) as connection:
        channel = connection.channel()
        for queue in (names.job_queue, names.dead_letter_queue):
            channel.queue_delete(queue)
        for exchange in (names.exchange, names.control_exchange):
            channel.exchange_delete(exchange)


@pytest.fixture(params=[pytest.param("amqp", marks=pytest.mark.rabbitmq), pytest.param("embedded")])
def broker(request, tmp_path) -> tuple[str, Topology]:
    """The broker URL and names, on RabbitMQ and on the embedded transport."""
    if request.param == "amqp":
        return request.getfixturevalue("rabbitmq"), request.getfixturevalue("topology")
    return f"sqla+sqlite:///{tmp_path / 'broker.db'}", unique_topology()


# -- helpers ---------------------------------------------------------------------------------------


def publish(url: str, topology: Topology, body: bytes, headers: dict | None = None) -> None:
    with Connection(url) as connection:
        Producer(connection.channel()).publish(
            body,
            exchange=topology.job_exchange,
            routing_key=JOB_ROUTING_KEY,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            headers=headers or {},
            declare=[topology.jobs, topology.dead_letters],
        )


def waiting(url: str, queue_name: str) -> int:
    """Messages ready in a queue (not counting those a consumer holds)."""
    with Connection(url) as connection:
        _, count, _ = connection.channel().queue_declare(queue=queue_name, passive=True)
        return count


def take_raw(url: str, topology: Topology) -> tuple[bytes, dict]:
    """The next message of the dead-letter queue, undecoded, with its headers."""
    got: list = []
    with Connection(url) as connection:
        channel = connection.channel()

        def keep(message):
            body = message.body  # py-amqp hands over text when the encoding is utf-8
            got.append((body.encode() if isinstance(body, str) else body, dict(message.headers)))
            message.ack()

        with Consumer(channel, [topology.dead_letters], on_message=keep):
            for _ in range(WAIT_S * 10):
                if got:
                    break
                with suppress(TimeoutError):
                    connection.drain_events(timeout=0.1)
    assert got, "nothing arrived on the dead-letter queue"
    return got[0]


@contextmanager
def consuming(consumer: JobConsumer) -> Iterator[JobConsumer]:
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    assert consumer.ready.wait(WAIT_S), "the consumer did not start consuming"
    try:
        yield consumer
    finally:
        consumer.stop()
        thread.join(WAIT_S)
        assert not thread.is_alive(), "the consumer did not stop"


def runner_for(url: str, topology: Topology, **runner: Any):
    settings = dataclasses.replace(
        Settings(),
        broker_url=url,
        exchange=topology.exchange,
        job_queue=topology.job_queue,
        dead_letter_queue=topology.dead_letter_queue,
        control_exchange=topology.control_exchange,
    )
    options = {"runner_id": "it-runner", "seed": "1", "time_factor": 0.0, "heartbeat_s": 0.05}
    return build_runner(settings, RunnerSettings(**{**options, **runner}), consumer_options=FAST)


class Gate:
    """A job handler that records each job and holds it until released."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.released = threading.Event()
        self.changed = threading.Condition()

    def __call__(self, body: bytes) -> JobOutcome:
        with self.changed:
            self.bodies.append(body)
            self.changed.notify_all()
        self.released.wait(WAIT_S)
        return JobOutcome(Disposition.ACK, "completed")

    def wait_for(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.bodies) >= count, WAIT_S)


def until(condition: Callable[[], bool]) -> bool:
    done = threading.Event()
    for _ in range(WAIT_S * 20):
        if condition():
            return True
        done.wait(0.05)
    return False


# -- the tests -------------------------------------------------------------------------------------


def test_a_job_runs_and_its_message_is_acked_after_the_result(broker):
    url, topology = broker
    run = make_run(devices=2, cases=2)
    with callback_server() as server:
        runner = runner_for(url, topology)
        with consuming(runner.consumer):
            publish(url, topology, job_bytes(run, base_url=server.url))
            assert server.wait_for("/result")
            assert until(lambda: not runner.consumer.busy)  # settled
        (result,) = server.posts_to("/result")
    assert len(result.body["results"]) == 4
    assert server.received[0].path.endswith("/started")
    assert result.headers["Authorization"] == "Bearer run-token"
    assert waiting(url, topology.job_queue) == 0


def test_an_unparseable_message_is_dead_lettered_with_the_reason(broker):
    url, topology = broker
    with callback_server() as server:
        runner = runner_for(url, topology)
        with consuming(runner.consumer):
            publish(url, topology, b"{ this is not json")
            body, headers = take_raw(url, topology)
    assert body == b"{ this is not json"
    assert headers[DEAD_REASON_HEADER] == "invalid_job"
    assert "not JSON" in headers["x-devicelab-dead-detail"]
    assert server.received == []
    assert waiting(url, topology.job_queue) == 0


def test_a_deferred_job_goes_behind_the_queue_and_waits_out_its_delay(broker):
    """A job whose run another runner claims: not requeued hot, not dropped."""
    url, topology = broker
    handled: list[tuple[bytes, float]] = []

    def handle(body: bytes) -> JobOutcome:
        handled.append((body, time.monotonic()))
        if body == b'{"job": "claimed"}' and len(handled) == 1:
            return JobOutcome(Disposition.DEFER, "run_claimed", "runner-b has it", delay_s=2)
        return JobOutcome(Disposition.ACK, "completed")

    for body in (b'{"job": "claimed"}', b'{"job": "next"}'):
        publish(url, topology, body)
    with consuming(JobConsumer(url, handle, topology=topology, options=FAST)) as consumer:
        assert until(lambda: len(handled) == 3 and not consumer.busy)
    bodies = [body for body, _ in handled]
    assert bodies == [b'{"job": "claimed"}', b'{"job": "next"}', b'{"job": "claimed"}']
    assert handled[2][1] - handled[0][1] >= 1.9  # held, not started, until its delay was over
    assert waiting(url, topology.job_queue) == 0


def test_stopping_while_a_deferred_job_waits_gives_it_back_unstarted(broker):
    url, topology = broker
    handled: list[bytes] = []

    def handle(body: bytes) -> JobOutcome:
        handled.append(body)
        return JobOutcome(Disposition.ACK, "completed")

    publish(url, topology, b'{"job": "later"}', {NOT_BEFORE_HEADER: time.time() + 60})
    with consuming(JobConsumer(url, handle, topology=topology, options=FAST)) as consumer:
        assert until(lambda: consumer.busy)  # holding it until it is due
    assert handled == []
    assert waiting(url, topology.job_queue) == 1


@pytest.mark.rabbitmq
def test_two_consumers_hold_one_job_each(rabbitmq, topology):
    first, second = Gate(), Gate()
    with (
        consuming(JobConsumer(rabbitmq, first, topology=topology, options=FAST)),
        consuming(JobConsumer(rabbitmq, second, topology=topology, options=FAST)),
    ):
        for n in range(3):
            publish(rabbitmq, topology, f'{{"job": {n}}}'.encode())
        assert first.wait_for(1) and second.wait_for(1)

        assert (len(first.bodies), len(second.bodies)) == (1, 1)
        assert waiting(rabbitmq, topology.job_queue) == 1  # the third waits for a free runner

        first.released.set()
        second.released.set()
        assert until(lambda: len(first.bodies) + len(second.bodies) == 3)
    handled = sorted(first.bodies + second.bodies)
    assert handled == [b'{"job": 0}', b'{"job": 1}', b'{"job": 2}']
    assert waiting(rabbitmq, topology.job_queue) == 0


HOLD_FOREVER = """
import sys, threading
from adapters.messaging.job_consumer import ConsumerOptions, JobConsumer
from adapters.messaging.topology import Topology

def handle(body):
    print("holding", flush=True)
    threading.Event().wait()

JobConsumer(sys.argv[1], handle, topology=Topology(*sys.argv[2:6]),
            options=ConsumerOptions(poll_s=0.05)).run()
"""


@pytest.mark.rabbitmq
def test_a_job_is_redelivered_when_its_runner_dies_before_the_result(rabbitmq, topology):
    names = [topology.exchange, topology.job_queue]
    names += [topology.dead_letter_queue, topology.control_exchange]
    doomed = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOREVER, rabbitmq, *names],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        with callback_server() as server:
            run = make_run()
            publish(rabbitmq, topology, job_bytes(run, base_url=server.url))
            assert doomed.stdout is not None
            assert doomed.stdout.readline().strip() == "holding"
            assert waiting(rabbitmq, topology.job_queue) == 0  # held, not acked

            doomed.send_signal(signal.SIGKILL)
            doomed.wait(WAIT_S)

            runner = runner_for(rabbitmq, topology)
            with consuming(runner.consumer):
                assert server.wait_for("/result")
                assert until(lambda: not runner.consumer.busy)
        assert len(server.posts_to("/result")) == 1
        assert waiting(rabbitmq, topology.job_queue) == 0
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed.wait(WAIT_S)


@pytest.mark.rabbitmq
def test_a_cancel_message_stops_the_job_and_nothing_is_reported(rabbitmq, topology):
    run = make_run(duration_s=3600)
    with callback_server() as server:
        runner = runner_for(rabbitmq, topology, time_factor=1.0)
        with consuming(runner.consumer):
            publish(rabbitmq, topology, job_bytes(run, base_url=server.url))
            assert server.wait_for("/started")
            run.abort(run.created_at, by="alice", reason="wrong firmware")
            with Connection(rabbitmq) as connection:
                Producer(connection.channel()).publish(
                    json.dumps(cancel_payload(run)),
                    exchange=topology.control,
                    routing_key="",
                    content_type="application/json",
                )
            assert until(lambda: runner.running.run_ids == [] and not runner.consumer.busy)
    assert server.posts_to("/result") == [] and server.posts_to("/failed") == []
    assert waiting(rabbitmq, topology.job_queue) == 0  # acked: nothing left to do


def test_stopping_gives_the_job_in_progress_back_to_the_queue(broker):
    url, topology = broker
    run = make_run(duration_s=3600)
    with callback_server() as server:
        runner = runner_for(url, topology, time_factor=1.0)
        with consuming(runner.consumer):
            publish(url, topology, job_bytes(run, base_url=server.url))
            assert server.wait_for("/started")
        # consuming() stopped the runner as SIGTERM would
    assert server.posts_to("/result") == [] and server.posts_to("/failed") == []
    assert waiting(url, topology.job_queue) == 1


@pytest.mark.rabbitmq
def test_the_consumer_reconnects_when_the_broker_comes_back(rabbitmq, topology):
    host, port = "127.0.0.1", int(rabbitmq.rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(host, port).start()
    via_proxy = rabbitmq.replace(f"{host}:{port}", f"{host}:{proxy.port}")
    gate = Gate()
    gate.released.set()
    consumer = JobConsumer(via_proxy, gate, topology=topology, options=FAST)
    try:
        with consuming(consumer):
            proxy.cut()
            assert until(lambda: not consumer.ready.is_set())
            proxy.restore()
            assert consumer.ready.wait(WAIT_S)
            publish(rabbitmq, topology, b'{"after": "reconnect"}')
            assert gate.wait_for(1)
    finally:
        proxy.cut()
    assert gate.bodies == [b'{"after": "reconnect"}']


def test_sigterm_stops_the_runner_process_and_requeues_its_job(tmp_path):
    url, topology = f"sqla+sqlite:///{tmp_path / 'broker.db'}", unique_topology()
    run = make_run(duration_s=3600)
    with callback_server() as server:
        publish(url, topology, job_bytes(run, base_url=server.url))
        process = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", "runner", "--runner-id", "bench-7"],
            cwd=REPO,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "DEVICELAB_DATA_DIR": str(tmp_path),
                "DEVICELAB_LOG_LEVEL": "INFO",
                "DEVICELAB_BROKER_URL": url,
                "DEVICELAB_EXCHANGE": topology.exchange,
                "DEVICELAB_JOB_QUEUE": topology.job_queue,
                "DEVICELAB_DEAD_LETTER_QUEUE": topology.dead_letter_queue,
                "DEVICELAB_CONTROL_EXCHANGE": topology.control_exchange,
            },
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            (started,) = server.wait_for("/started")
            process.send_signal(signal.SIGTERM)
            _, log = process.communicate(timeout=WAIT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, log
    assert started.body["runner"] == "bench-7"
    # and what it is, for the runner registry
    assert set(started.body) == {"runner", "host", "version", "executors"}
    assert started.body["executors"] == ["command", "influxdb", "simulate"]
    assert "settled: requeue (shutdown)" in log
    assert server.posts_to("/result") == [] and server.posts_to("/failed") == []
    assert waiting(url, topology.job_queue) == 1
