"""The telemetry payload (docs/telemetry.md) and the listener's settings."""

from __future__ import annotations

import json

import pytest

from adapters.telemetry.mqtt import BrokerAddress, MqttOptions
from adapters.telemetry.payload import (
    MAX_PAYLOAD_BYTES,
    BadTelemetry,
    device_from_topic,
    parse_telemetry,
)
from entrypoints.settings import SettingsError, TelemetrySettings, variable_names

FILTER = "lab/+/telemetry"


def parse(payload: object, topic: str = "lab/meter-01/telemetry", raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    return parse_telemetry(FILTER, topic, body)


# -- device names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic_filter", "topic", "name"),
    [
        ("lab/+/telemetry", "lab/meter-01/telemetry", "meter-01"),
        ("+/telemetry", "dongle-7/telemetry", "dongle-7"),
        ("site/a/+/+/up", "site/a/meter-9/x/up", "meter-9"),
        ("lab/#", "lab/meter-01/telemetry", None),
        ("lab/+/telemetry", "other/meter-01/telemetry", None),
        ("lab/+/telemetry", "lab", None),
        ("lab/+/telemetry", "lab//telemetry", None),
    ],
)
def test_the_device_name_is_the_level_of_the_first_plus(topic_filter, topic, name) -> None:
    assert device_from_topic(topic_filter, topic) == name


def test_an_empty_object_is_a_heartbeat_of_the_device_in_the_topic() -> None:
    report = parse({})
    assert report.device_name == "meter-01"
    assert report.firmware_version is None
    assert (report.model, report.serial, report.location, report.labels) == ("", "", "", {})


@pytest.mark.parametrize("raw", [b"", b"  \n"])
def test_an_empty_message_is_refused_as_it_clears_retained_messages(raw: bytes) -> None:
    with pytest.raises(BadTelemetry, match="empty message"):
        parse(None, raw=raw)


def test_the_device_member_names_the_device_for_gateways() -> None:
    report = parse({"device": " meter-02 "}, topic="lab/gateway-1/telemetry")
    assert report.device_name == "meter-02"


def test_a_message_naming_no_device_is_refused() -> None:
    with pytest.raises(BadTelemetry, match="no device name"):
        parse_telemetry("lab/#", "lab/x/telemetry", b"{}")


# -- members -------------------------------------------------------------------------------------


def test_every_documented_member_is_read_and_unknown_ones_ignored() -> None:
    report = parse(
        {
            "firmware": "2.4.1",
            "model": "EM-340",
            "serial": "SN-1",
            "location": "rack 3",
            "labels": {"site": "lab-a", " phase ": "3"},
            "metrics": {"voltage": 230.1},
            "ts": 1767225600000,
        }
    )
    assert report.firmware_version == "2.4.1"
    assert (report.model, report.serial, report.location) == ("EM-340", "SN-1", "rack 3")
    assert report.labels == {"site": "lab-a", "phase": "3"}


def test_firmware_version_is_accepted_as_the_apis_name_for_firmware() -> None:
    assert parse({"firmware_version": "1.2"}).firmware_version == "1.2"
    assert parse({"firmware": "1.2", "firmware_version": "1.2"}).firmware_version == "1.2"
    with pytest.raises(BadTelemetry, match="disagree"):
        parse({"firmware": "1.2", "firmware_version": "1.3"})


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ([1, 2], "must be a JSON object"),
        ("meter", "must be a JSON object"),
        ({"firmware": 2.4}, '"firmware" must be a string'),
        ({"device": ["x"]}, '"device" must be a string'),
        ({"device": "  "}, '"device" must not be empty'),
        ({"model": "m" * 201}, "longer than 200"),
        ({"labels": ["a"]}, '"labels" must be an object'),
        ({"labels": {"": "x"}}, "label keys"),
        ({"labels": {"a": 1}}, 'label "a" must be a string'),
        ({"labels": {str(i): "x" for i in range(51)}}, "more than 50"),
    ],
)
def test_malformed_members_are_refused_with_the_reason(payload, complaint) -> None:
    with pytest.raises(BadTelemetry, match=complaint):
        parse(payload)


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", "larger than"),
    ],
)
def test_undecodable_messages_are_refused(raw, complaint) -> None:
    with pytest.raises(BadTelemetry, match=complaint):
        parse(None, raw=raw)


# -- broker address and subscription -----------------------------------------------------------


def test_the_broker_url_gives_host_port_tls_and_credentials() -> None:
    plain = BrokerAddress.from_url("mqtt://broker.lab")
    assert (plain.host, plain.port, plain.tls, plain.username) == ("broker.lab", 1883, False, None)
    secure = BrokerAddress.from_url("mqtts://dev%40lab:p%3Ass@broker.lab:9883")
    assert (secure.host, secure.port, secure.tls) == ("broker.lab", 9883, True)
    assert (secure.username, secure.password) == ("dev@lab", "p:ss")
    assert "p:ss" not in str(secure) and "p%3Ass" not in str(secure)
    assert BrokerAddress.from_url("mqtts://broker.lab").port == 8883
    with pytest.raises(ValueError):
        BrokerAddress.from_url("http://broker.lab")


def test_a_share_group_makes_a_shared_subscription() -> None:
    assert MqttOptions(topic="lab/+/telemetry").subscription == "lab/+/telemetry"
    shared = MqttOptions(topic="lab/+/telemetry", share_group="devicelab")
    assert shared.subscription == "$share/devicelab/lab/+/telemetry"


# -- settings -------------------------------------------------------------------------------------


def test_telemetry_settings_defaults_and_overrides() -> None:
    defaults = TelemetrySettings.from_env({})
    assert (defaults.mqtt_url, defaults.topic) == ("mqtt://127.0.0.1:1883", "lab/+/telemetry")
    assert (defaults.discovery, defaults.qos, defaults.share_group) == (False, 1, "")
    assert defaults.client_id.startswith("devicelab-telemetry-")
    custom = TelemetrySettings.from_env(
        {
            "DEVICELAB_MQTT_URL": "mqtts://broker:8883",
            "DEVICELAB_MQTT_TOPIC": "site/+/meters/#",
            "DEVICELAB_MQTT_DISCOVERY": "true",
            "DEVICELAB_MQTT_SHARE_GROUP": "devicelab",
            "DEVICELAB_MQTT_CLIENT_ID": "telemetry-1",
            "DEVICELAB_MQTT_QOS": "0",
            "DEVICELAB_MQTT_HEARTBEAT_INTERVAL_S": "5",
        }
    )
    assert custom == TelemetrySettings(
        "mqtts://broker:8883", "site/+/meters/#", True, "devicelab", "telemetry-1", 0, 5
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEVICELAB_MQTT_URL", "tcp://broker:1883"),
        ("DEVICELAB_MQTT_TOPIC", "lab/meter+/telemetry"),
        ("DEVICELAB_MQTT_TOPIC", "lab/#/telemetry"),
        ("DEVICELAB_MQTT_TOPIC", "$SYS/#"),
        ("DEVICELAB_MQTT_DISCOVERY", "maybe"),
        ("DEVICELAB_MQTT_SHARE_GROUP", "a/b"),
        ("DEVICELAB_MQTT_QOS", "3"),
    ],
)
def test_bad_telemetry_settings_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        TelemetrySettings.from_env({name: value})


def test_the_variable_names_are_exactly_those_settings_py_mentions() -> None:
    """variable_names() records what the settings classes look up; compare with the names
    written in settings.py, so neither can drift from the other."""
    import re
    from pathlib import Path

    import entrypoints.settings as settings_module

    source = Path(settings_module.__file__).read_text()
    written = set(re.findall(r"""["'](DEVICELAB_[A-Z0-9_]+)["']""", source))
    assert written == set(variable_names())
    assert {"DEVICELAB_DATABASE_URL", "DEVICELAB_MQTT_TOPIC", "DEVICELAB_INFLUX_URL"} <= written
