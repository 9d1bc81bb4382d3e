"""The telemetry message a device publishes, decoded into a TelemetryReport.

The format is documented in docs/telemetry.md: a JSON object, every member optional; the
device is named by `device` or else by the topic level the filter's first `+` matches.
Members devicelab does not know (measurements, timestamps, ...) are ignored, so devices may
publish one message for devicelab and the lab's time-series pipeline alike."""

from __future__ import annotations

import json
from typing import Any

from application.use_cases.telemetry import TelemetryReport

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_TEXT = 200  # the REST API's limit for the same device fields
MAX_LABELS, MAX_LABEL_KEY, MAX_LABEL_VALUE = 50, 100, 500


class BadTelemetry(ValueError):
    """The message cannot be understood; it is skipped."""


def device_from_topic(topic_filter: str, topic: str) -> str | None:
    """The topic level that the filter's first `+` stands for (None if the filter has none or
    the topic does not match it)."""
    wanted = topic_filter.split("/")
    levels = topic.split("/")
    if "+" not in wanted:
        return None
    index = wanted.index("+")
    if index >= len(levels) or any(
        w != level for w, level in zip(wanted[:index], levels[:index], strict=False)
    ):
        return None
    return levels[index] or None


def parse_telemetry(topic_filter: str, topic: str, payload: bytes) -> TelemetryReport:
    if not payload.strip():
        # also what clearing a retained message looks like to a subscriber: not a sign of life
        raise BadTelemetry("empty message (publish {} for a plain heartbeat)")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadTelemetry(f"payload of {len(payload)} bytes is larger than {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadTelemetry("payload is not UTF-8") from None
    except ValueError as error:
        raise BadTelemetry(f"payload is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadTelemetry(f"payload must be a JSON object, got {type(data).__name__}")

    if "device" in data and not _text(data, "device"):
        raise BadTelemetry('"device" must not be empty')
    name = _text(data, "device") or device_from_topic(topic_filter, topic)
    if not name:
        raise BadTelemetry(
            f'no device name: neither a "device" member nor a + level of {topic_filter!r}'
        )
    firmware = _text(data, "firmware")
    alias = _text(data, "firmware_version")
    if firmware and alias and firmware != alias:
        raise BadTelemetry(f'"firmware" {firmware!r} and "firmware_version" {alias!r} disagree')
    return TelemetryReport(
        device_name=name,
        firmware_version=firmware or alias,
        model=_text(data, "model") or "",
        serial=_text(data, "serial") or "",
        location=_text(data, "location") or "",
        labels=_labels(data.get("labels")),
    )


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadTelemetry(f'"{key}" must be a string, got {type(value).__name__}')
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise BadTelemetry(f'"{key}" is longer than {MAX_TEXT} characters')
    return value or None


def _labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadTelemetry(f'"labels" must be an object, got {type(value).__name__}')
    if len(value) > MAX_LABELS:
        raise BadTelemetry(f'"labels" has more than {MAX_LABELS} entries')
    for key, text in value.items():
        if not 1 <= len(key.strip()) <= MAX_LABEL_KEY:
            raise BadTelemetry(f"label keys must have 1 to {MAX_LABEL_KEY} characters: {key!r}")
        if not isinstance(text, str) or len(text) > MAX_LABEL_VALUE:
            raise BadTelemetry(
                f'label "{key}" must be a string of at most {MAX_LABEL_VALUE} characters'
            )
    return {key.strip(): text for key, text in value.items()}
