"""Telemetry through a real MQTT broker (Mosquitto) into the SQL database: discovery,
heartbeats and firmware, malformed and retained messages, reconnects, shared subscriptions, and
the `devicelab telemetry` process stopping on SIGTERM.

The broker comes from DEVICELAB_TEST_MQTT_URL (default mqtt://127.0.0.1:1883). Every test
publishes under a topic prefix of its own. Without a broker the tests are skipped, except with
CI=true, where they fail."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.clocks import SystemClock
from adapters.identifiers import UuidGenerator
from adapters.persistence.schema import upgrade_schema
from adapters.telemetry.mqtt import BrokerAddress, MqttOptions, MqttTelemetryListener
from application.use_cases.telemetry import RecordTelemetry
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.mqtt

MQTT_URL_VARIABLE = "DEVICELAB_TEST_MQTT_URL"
REPO = Path(__file__).resolve().parents[2]


# -- the broker --------------------------------------------------------------------------------


def _connect(address: BrokerAddress, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.connect(address.host, address.port, keepalive=10)
    client.loop_start()
    return client


@pytest.fixture(scope="module")
def broker_url() -> str:
    url = os.environ.get(MQTT_URL_VARIABLE) or "mqtt://127.0.0.1:1883"
    address = BrokerAddress.from_url(url)
    try:
        _connect(address, f"devicelab-probe-{uuid.uuid4().hex[:8]}").disconnect()
    except OSError as error:
        reason = f"no MQTT broker at {address} ({error}); set {MQTT_URL_VARIABLE}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return url


class Publisher:
    def __init__(self, url: str) -> None:
        self.client = _connect(BrokerAddress.from_url(url), f"devicelab-test-{uuid.uuid4().hex}")

    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, body, qos=1, retain=retain).wait_for_publish(timeout=5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker_url: str) -> Iterator[Publisher]:
    publisher = Publisher(broker_url)
    yield publisher
    publisher.close()


@pytest.fixture
def prefix() -> str:
    return f"devicelab-test/{uuid.uuid4().hex[:12]}"


# -- the listener on the SQL adapters -----------------------------------------------------------


class RunningListener:
    def __init__(self, listener: MqttTelemetryListener) -> None:
        self.listener = listener
        self.thread = threading.Thread(target=listener.run, daemon=True)
        self.thread.start()
        assert listener.subscribed.wait(10), "the listener did not subscribe within 10 s"

    def stop(self) -> None:
        self.listener.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def start_listener(
    broker_url: str, new_uow: Any, prefix: str
) -> Iterator[Callable[..., RunningListener]]:
    started: list[RunningListener] = []

    def start(discovery: bool = True, url: str = broker_url, **options: Any) -> RunningListener:
        record = RecordTelemetry(new_uow, SystemClock(), UuidGenerator(), discovery, 0)
        listener = MqttTelemetryListener(
            MqttOptions(
                url=url,
                topic=f"{prefix}/+/telemetry",
                client_id=f"devicelab-test-listener-{uuid.uuid4().hex}",
                **options,
            ),
            record,
        )
        started.append(RunningListener(listener))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def wait_for(condition: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout_s} s: {condition}")


def device_named(new_uow: Any, name: str):
    with new_uow() as uow:
        return uow.devices.get_by_name(name)


# -- tests -------------------------------------------------------------------------------------


def test_published_telemetry_registers_a_device_and_updates_it(
    start_listener, publisher: Publisher, prefix: str, new_uow: Any
) -> None:
    start_listener(discovery=True)
    publisher.publish(f"{prefix}/meter-a/telemetry", {"firmware": "1.0", "model": "EM-340"})
    device = wait_for(lambda: device_named(new_uow, "meter-a"))
    assert (device.firmware_version, device.model) == ("1.0", "EM-340")
    assert device.labels == {"discovered": "telemetry"}
    assert device.status.value == "available"
    first_seen = device.last_seen_at
    assert first_seen is not None

    time.sleep(0.01)
    publisher.publish(f"{prefix}/meter-a/telemetry", {"firmware": "1.1"})
    updated = wait_for(
        lambda: (d := device_named(new_uow, "meter-a")).firmware_version == "1.1" and d
    )
    assert updated.id == device.id
    assert updated.last_seen_at > first_seen


def test_malformed_and_retained_messages_are_skipped_and_the_listener_goes_on(
    start_listener, publisher: Publisher, prefix: str, new_uow: Any
) -> None:
    publisher.publish(f"{prefix}/meter-old/telemetry", {"firmware": "0.1"}, retain=True)
    try:
        running = start_listener(discovery=True)
        for bad in (b"{not json", b"[1, 2]", json.dumps({"firmware": 3}).encode(), b"\xff", b""):
            publisher.publish(f"{prefix}/meter-b/telemetry", bad)
        publisher.publish(f"{prefix}/meter-c/telemetry", {"device": "  "})
        publisher.publish(f"{prefix}/meter-d/telemetry", {})
        wait_for(lambda: device_named(new_uow, "meter-d"))
        counts = running.listener.counts
        assert (counts.received, counts.skipped, counts.handled) == (8, 7, 1)
        assert device_named(new_uow, "meter-b") is None
        assert device_named(new_uow, "meter-c") is None
        assert device_named(new_uow, "meter-old") is None
        assert running.thread.is_alive()
    finally:
        publisher.publish(f"{prefix}/meter-old/telemetry", b"", retain=True)  # clear it


def test_without_discovery_unknown_devices_stay_unknown(
    start_listener, publisher: Publisher, prefix: str, new_uow: Any
) -> None:
    from application.use_cases.devices import RegisterDevice, RegisterDeviceRequest

    RegisterDevice(new_uow, SystemClock(), UuidGenerator())(RegisterDeviceRequest("known-1"))
    start_listener(discovery=False)
    publisher.publish(f"{prefix}/stranger/telemetry", {"firmware": "9"})
    publisher.publish(f"{prefix}/known-1/telemetry", {"firmware": "2.0"})
    known = wait_for(lambda: (d := device_named(new_uow, "known-1")).firmware_version and d)
    assert known.firmware_version == "2.0"
    assert device_named(new_uow, "stranger") is None


def test_the_listener_reconnects_and_resubscribes_after_losing_the_broker(
    start_listener, broker_url: str, publisher: Publisher, prefix: str, new_uow: Any
) -> None:
    address = BrokerAddress.from_url(broker_url)
    proxy = TcpProxy(address.host, address.port).start()
    credentials = f"{address.username}:{address.password}@" if address.username else ""
    try:
        running = start_listener(
            url=f"mqtt://{credentials}127.0.0.1:{proxy.port}",
            min_reconnect_s=0.1,
            max_reconnect_s=0.5,
        )
        proxy.cut()
        wait_for(lambda: not running.listener.subscribed.is_set())
        time.sleep(0.5)  # a few reconnect attempts fail meanwhile
        proxy.restore()
        assert running.listener.subscribed.wait(10), "no resubscription after the broker came back"
        publisher.publish(f"{prefix}/meter-r/telemetry", {"firmware": "r1"})
        assert wait_for(lambda: device_named(new_uow, "meter-r")).firmware_version == "r1"
        assert running.thread.is_alive()
    finally:
        proxy.cut()


def test_listeners_of_one_share_group_split_the_messages(
    start_listener, publisher: Publisher, prefix: str, new_uow: Any
) -> None:
    group = f"devicelab-test-{uuid.uuid4().hex[:8]}"
    first = start_listener(share_group=group)
    second = start_listener(share_group=group)
    names = [f"meter-s{i}" for i in range(20)]
    for name in names:
        publisher.publish(f"{prefix}/{name}/telemetry", {})
    wait_for(lambda: all(device_named(new_uow, name) for name in names))
    time.sleep(0.2)  # a duplicate delivery would show up by now
    handled = first.listener.counts.handled + second.listener.counts.handled
    assert handled == len(names)  # each message went to one listener only
    assert first.listener.counts.handled and second.listener.counts.handled


def test_devicelab_telemetry_records_until_sigterm(
    broker_url: str, publisher: Publisher, prefix: str, tmp_path: Path
) -> None:
    """The real process: configured by environment variables only, stopped by SIGTERM."""
    database_url = f"sqlite:///{tmp_path / 'devicelab.db'}"
    upgrade_schema(database_url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DEVICELAB_")},
        "DEVICELAB_DATABASE_URL": database_url,
        "DEVICELAB_DATA_DIR": str(tmp_path),
        "DEVICELAB_MQTT_URL": broker_url,
        "DEVICELAB_MQTT_TOPIC": f"{prefix}/+/telemetry",
        "DEVICELAB_MQTT_DISCOVERY": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "telemetry"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        from adapters.persistence.engine import make_engine, make_session_factory
        from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork

        engine = make_engine(database_url)
        sessions = make_session_factory(engine)

        def appeared():
            # the process subscribes at its own pace: publish until the device shows up
            publisher.publish(f"{prefix}/meter-cli/telemetry", {"firmware": "7.0"})
            time.sleep(0.1)
            return device_named(functools.partial(SqlAlchemyUnitOfWork, sessions), "meter-cli")

        assert wait_for(appeared, timeout_s=20).firmware_version == "7.0"
        engine.dispose()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "device meter-cli registered itself" in output
    assert "telemetry stopped" in output
