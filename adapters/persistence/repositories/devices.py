"""The devices aggregate in SQL: devices, their labels and their status history."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository, after_by_name, contains_text
from adapters.persistence.repositories.change_feed import log_change
from application.errors import ConcurrentUpdate
from application.ports import DeviceFilter
from domain.devices import Device, DeviceStatus, ServiceNote, ServiceState, StatusChange
from domain.health import DeviceHealth, HealthNote
from domain.holds import HoldNote
from domain.names import name_key
from domain.scheduling import Signature


def _device_values(device: Device) -> dict[str, Any]:
    note, hold = device.service_note, device.hold
    return {
        "name": device.name,
        "name_key": device.name_key,
        "model": device.model,
        "serial": device.serial,
        "firmware_version": device.firmware_version,
        "location": device.location,
        "held_by": device.held_by,
        "hold_holder": hold.holder if hold else None,
        "hold_until": hold.until if hold else None,
        "hold_reason": hold.reason if hold else None,
        "service_state": device.service_state.value,
        "service_by": note.by if note else None,
        "service_reason": note.reason if note else None,
        "service_since": note.since if note else None,
        "status": device.status.value,
        "last_seen_at": device.last_seen_at,
        "created_at": device.created_at,
        "updated_at": device.updated_at,
        **_health_values(device),
    }


def _health_values(device: Device) -> dict[str, Any]:
    health = device.health_note
    return {
        "health": device.health.value,
        "health_run_id": health.run_id if health else None,
        "health_reason": health.reason if health else None,
        "health_by": health.by if health else None,
        "health_since": health.since if health else None,
        "health_checked_at": device.health_checked_at,
        "runs_since_health_check": device.runs_since_health_check,
        "health_check_owed": device.health_check_owed,
    }


# The statements of the start path, built once: values travel as parameters, so no statement
# object (and cache key) is built per call.
_UPDATE_DEVICE = t.devices.update().where(
    t.devices.c.id == sa.bindparam("match_id"),
    t.devices.c.version == sa.bindparam("match_version"),
)


def _with_labels(statement: sa.Select[Any], order: Sequence[str] = ("name", "id")) -> sa.Select:
    """`statement`'s devices with their labels, in `order` (column names). One query and one
    round trip: the statement's devices as a subquery, joined to their labels (a row per
    label). (An `id IN (subquery)` form reads the same but makes PostgreSQL scan every
    device.)"""
    page = statement.subquery("page")
    labels = t.device_labels.c
    return (
        sa.select(page, labels.key.label("label_key"), labels.value.label("label_value"))
        .select_from(page.outerjoin(t.device_labels, labels.device_id == page.c.id))
        .order_by(*(page.c[name] for name in order), labels.key)
    )


@functools.cache
def _page_statement(status: str, label: str, after: bool) -> sa.Select:
    """A page of the device list without a text search, built once per shape of filter
    (building the subquery with its labels was a fifth of a list request); the values are
    parameters. `status`: "is" (:status), "not" (not :status: the retired) or "all";
    `label`: "none", "key" (:label_key) or "key_value"; `after`: keyset from
    :after_name, :after_id."""
    devices = t.devices.c
    statement = sa.select(t.devices)
    if status == "is":
        statement = statement.where(devices.status == sa.bindparam("status"))
    elif status == "not":
        statement = statement.where(devices.status != sa.bindparam("status"))
    if label != "none":
        labels = t.device_labels.c
        has_label = sa.select(labels.device_id).where(
            labels.device_id == devices.id, labels.key == sa.bindparam("label_key")
        )
        if label == "key_value":
            has_label = has_label.where(labels.value == sa.bindparam("label_value"))
        statement = statement.where(has_label.exists())
    if after:
        statement = statement.where(
            after_by_name(t.devices, (sa.bindparam("after_name"), sa.bindparam("after_id")))
        )
    statement = statement.order_by(devices.name, devices.id).limit(sa.bindparam("limit"))
    return _with_labels(statement)


# the stored values' members, found by a dict lookup: calling the enum class for each of 50
# rows (ServiceState(value)) was a tenth of their mapping; an unknown value still raises
_SERVICE_STATES = {state.value: state for state in ServiceState}
_HEALTHS = {health.value: health for health in DeviceHealth}


def _device(row: Any) -> Device:
    """A device from its row (a row's `_mapping`: a column by name costs a twentieth of
    the row's attribute access, and a device reads 28 of them). Its name and labels were
    checked when they were written, so they are not checked again (Device.restored): a page
    of 50 spent a third of its mapping time re-checking them."""
    held_by, hold_until = row["held_by"], row["hold_until"]
    service_since, health_since = row["service_since"], row["health_since"]
    return Device.restored(
        id=row["id"],
        name=row["name"],
        model=row["model"],
        serial=row["serial"],
        firmware_version=row["firmware_version"],
        location=row["location"],
        labels={},
        held_by=held_by,
        hold=(
            HoldNote(held_by, row["hold_holder"] or "", hold_until, row["hold_reason"] or "")
            if held_by is not None and hold_until is not None
            else None
        ),
        service_state=_SERVICE_STATES.get(row["service_state"])
        or ServiceState(row["service_state"]),
        service_note=(
            ServiceNote(row["service_by"] or "", row["service_reason"] or "", service_since)
            if service_since is not None
            else None
        ),
        last_seen_at=row["last_seen_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        health=_HEALTHS.get(row["health"]) or DeviceHealth(row["health"]),
        health_note=(
            HealthNote(
                row["health_run_id"],
                row["health_reason"] or "",
                row["health_by"] or "",
                health_since,
            )
            if health_since is not None
            else None
        ),
        health_checked_at=row["health_checked_at"],
        runs_since_health_check=row["runs_since_health_check"],
        health_check_owed=bool(row["health_check_owed"]),
    )


class SqlDeviceRepository(SqlRepository):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        # labels as last read or written, so an update rewrites them only when they changed
        self._known_labels: dict[str, dict[str, str]] = {}

    def add(self, device: Device) -> None:
        values = {"id": device.id, **_device_values(device), "version": device.version + 1}
        with self._unique_name("device", "uq_devices_name", device.name):
            self._execute(sa.insert(t.devices).values(values))
        self._insert_labels(device.id, device.labels)
        self._insert_history(device)
        log_change(self, "device", device.id)
        device.version += 1

    def update(self, device: Device) -> None:
        values = {
            **_device_values(device),
            "version": device.version + 1,
            "match_id": device.id,
            "match_version": device.version,
        }
        with self._unique_name("device", "uq_devices_name", device.name):
            result = self._execute(_UPDATE_DEVICE, values)
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"device {device.name} was changed meanwhile; retry")
        if self._known_labels.get(device.id) != device.labels:
            self._execute(
                sa.delete(t.device_labels).where(t.device_labels.c.device_id == device.id)
            )
            self._insert_labels(device.id, device.labels)
        self._insert_history(device)
        log_change(self, "device", device.id)
        device.version += 1

    def remove(self, device: Device) -> None:
        # labels and status history go with it (ON DELETE CASCADE)
        self._execute(sa.delete(t.devices).where(t.devices.c.id == device.id))
        self._known_labels.pop(device.id, None)
        log_change(self, "device", device.id, deleted=True)

    def get(self, device_id: str) -> Device | None:
        found = self._select(sa.select(t.devices).where(t.devices.c.id == device_id))
        return found[0] if found else None

    def get_by_name(self, name: str) -> Device | None:
        found = self._select(sa.select(t.devices).where(t.devices.c.name_key == name_key(name)))
        return found[0] if found else None

    def get_many_for_update(self, device_ids: Sequence[str]) -> list[Device]:
        if not device_ids:
            return []
        # Locking in id order means two transactions never wait for each other in a cycle.
        devices, labels = t.devices.c, t.device_labels.c
        statement = (
            sa.select(t.devices, labels.key.label("label_key"), labels.value.label("label_value"))
            .outerjoin(t.device_labels, labels.device_id == devices.id)
            .where(devices.id.in_(sorted(set(device_ids))))
            .order_by(devices.id, labels.key)
            .with_for_update(of=t.devices)  # the labels stay unlocked (and may be absent)
        )
        return self._collect(self._execute(statement))

    def list(self, where: DeviceFilter, limit: int, after: tuple | None) -> list[Device]:
        if where.text:  # a text search is rare and costs its LIKEs anyway: built per call
            return self._select(self._filtered(where, after).limit(limit))
        status = "all" if where.include_retired else "not"
        params: dict[str, Any] = {"limit": limit, "status": DeviceStatus.RETIRED.value}
        if where.status is not None:
            status, params["status"] = "is", DeviceStatus(where.status).value
        label = "none"
        if where.label is not None:
            label = "key" if where.label[1] is None else "key_value"
            params["label_key"], params["label_value"] = where.label
        if after is not None:
            params["after_name"], params["after_id"] = after
        statement = _page_statement(status, label, after is not None)
        return self._collect(self._execute(statement, params))

    def list_relevant(
        self, device_ids: Sequence[str], signatures: Sequence[Signature]
    ) -> list[Device]:
        devices, labels = t.devices.c, t.device_labels.c
        wanted: list[Any] = [devices.id.in_(sorted(set(device_ids)))] if device_ids else []
        for signature in signatures:
            each: list[Any] = [devices.model == signature.model] if signature.model else []
            each += [
                sa.select(labels.device_id)
                .where(labels.device_id == devices.id, labels.key == key, labels.value == value)
                .exists()
                for key, value in signature.labels
            ]
            wanted.append(sa.and_(sa.true(), *each))
        if not wanted:
            return []
        statement = sa.select(t.devices).where(sa.or_(*wanted))
        return self._select(statement.order_by(devices.name, devices.id))

    def _filtered(self, where: DeviceFilter, after: tuple | None) -> sa.Select[Any]:
        statement = sa.select(t.devices)
        if where.status is not None:
            statement = statement.where(t.devices.c.status == DeviceStatus(where.status).value)
        elif not where.include_retired:
            statement = statement.where(t.devices.c.status != DeviceStatus.RETIRED.value)
        if where.text:
            statement = statement.where(
                sa.or_(
                    *(
                        contains_text(column, where.text)
                        for column in (
                            t.devices.c.name,
                            t.devices.c.serial,
                            t.devices.c.model,
                            t.devices.c.location,
                            t.devices.c.firmware_version,
                        )
                    )
                )
            )
        if where.label is not None:
            key, value = where.label
            label = sa.select(t.device_labels.c.device_id).where(
                t.device_labels.c.device_id == t.devices.c.id, t.device_labels.c.key == key
            )
            if value is not None:
                label = label.where(t.device_labels.c.value == value)
            statement = statement.where(label.exists())
        keyset = after_by_name(t.devices, after)
        if keyset is not None:
            statement = statement.where(keyset)
        return statement.order_by(t.devices.c.name, t.devices.c.id)

    def list_silent(self, seen_before: datetime, limit: int) -> list[Device]:
        statement = (
            sa.select(t.devices)
            .where(
                t.devices.c.service_state == ServiceState.IN_SERVICE.value,
                t.devices.c.last_seen_at.is_not(None),
                t.devices.c.last_seen_at < seen_before,
            )
            .order_by(t.devices.c.id)
            .limit(limit)
        )
        return self._select(statement, order=("id",))

    def history(self, device_id: str, limit: int) -> list[StatusChange]:
        changes = t.device_status_changes
        rows = self._execute(
            sa.select(changes)
            .where(changes.c.device_id == device_id)
            .order_by(changes.c.id.desc())
            .limit(limit)
        )
        return [
            StatusChange(
                at=row.at,
                from_status=DeviceStatus(row.from_status),
                to_status=DeviceStatus(row.to_status),
                actor=row.actor,
                reason=row.reason,
                run_id=row.run_id,
            )
            for row in rows
        ]

    def _select(
        self, statement: sa.Select[Any], order: Sequence[str] = ("name", "id")
    ) -> list[Device]:
        """The devices `statement` selects (a `select(t.devices)` with its filters, order and
        limit), with their labels, in `order` (column names); see `_with_labels`."""
        return self._collect(self._execute(_with_labels(statement, order)))

    def _collect(self, rows: Any) -> list[Device]:
        """Devices from rows of device columns plus `label_key`/`label_value`, a row per
        label (or one with no label), a device's rows together."""
        found: list[Device] = []
        last_id = None
        for row in rows:
            values = row._mapping
            if not found or last_id != values["id"]:
                found.append(_device(values))
                last_id = values["id"]
            if values["label_key"] is not None:
                found[-1].labels[values["label_key"]] = values["label_value"]
        for device in found:
            self._known_labels[device.id] = dict(device.labels)
        return found

    def _insert_labels(self, device_id: str, labels: dict[str, str]) -> None:
        if labels:
            self._execute(
                sa.insert(t.device_labels),
                [{"device_id": device_id, "key": k, "value": v} for k, v in labels.items()],
            )
        self._known_labels[device_id] = dict(labels)

    def _insert_history(self, device: Device) -> None:
        if device.new_history:
            self._execute(
                sa.insert(t.device_status_changes),
                [
                    {
                        "device_id": device.id,
                        "at": change.at,
                        "from_status": change.from_status.value,
                        "to_status": change.to_status.value,
                        "actor": change.actor,
                        "reason": change.reason,
                        "run_id": change.run_id,
                    }
                    for change in device.new_history
                ],
            )
        device.new_history.clear()
