"""The telemetry listener process (`devicelab telemetry`): MQTT in, heartbeats and discovered
devices out. SIGTERM / SIGINT: the message in hand is finished, then the process disconnects
and ends."""

from __future__ import annotations

import signal

from adapters.telemetry.mqtt import MqttOptions, MqttTelemetryListener
from application.use_cases.telemetry import RecordTelemetry
from entrypoints.container import Container, dispose_engines
from entrypoints.settings import Settings, TelemetrySettings
from entrypoints.wsgi import create_container


def build_listener(container: Container, telemetry: TelemetrySettings) -> MqttTelemetryListener:
    """Everything the listener needs; nothing connects before `run()`."""
    record = RecordTelemetry(
        container.uow,
        container.clock(),
        container.ids(),
        discovery=telemetry.discovery,
        min_interval_s=telemetry.heartbeat_interval_s,
    )
    options = MqttOptions(
        url=telemetry.mqtt_url,
        topic=telemetry.topic,
        share_group=telemetry.share_group,
        client_id=telemetry.client_id,
        qos=telemetry.qos,
    )
    return MqttTelemetryListener(options, record)


def run_telemetry(settings: Settings, telemetry: TelemetrySettings) -> None:
    """Run until SIGTERM / SIGINT."""
    container = create_container(settings)
    listener = build_listener(container, telemetry)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: listener.stop())
    try:
        listener.run()
    finally:
        dispose_engines(container)
