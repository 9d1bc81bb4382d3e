"""The device list and device views build their JSON by hand (adapters/http/devices.py,
`device_json`) instead of dumping DeviceSchema field by field; the schema still documents the
answer. These properties hold the two to the same output for any device."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from adapters.http.devices import DeviceSchema, device_json
from domain.devices import Device

text = st.text(max_size=30)
name = text.filter(lambda s: s.strip())
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
moments = st.none() | st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones
)
devices = st.builds(
    Device,
    id=st.uuids().map(str),
    name=name,
    model=text,
    serial=text,
    firmware_version=text,
    location=text,
    labels=st.dictionaries(name, text, max_size=5),
    held_by=st.none() | st.uuids().map(str),
    marked_offline=st.booleans(),
    last_seen_at=moments,
    created_at=moments,
    updated_at=moments,
)


@given(devices)
def test_device_json_is_what_the_schema_dumps(device: Device) -> None:
    by_schema = DeviceSchema().dump(device)
    built = device_json(device)
    assert built == by_schema
    assert list(built) == list(by_schema)  # same key order, so the same bytes on the wire
    assert json.dumps(built) == json.dumps(by_schema)


def test_every_field_of_the_schema_is_built() -> None:
    device = Device("d1", "meter", labels={"site": "lab"}, held_by="r1", marked_offline=True)
    assert set(device_json(device)) == set(DeviceSchema().fields)
    assert device_json(device)["offline_pending"] is True
    assert device_json(device)["status"] == "in_test"
