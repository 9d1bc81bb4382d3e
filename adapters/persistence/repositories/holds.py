"""The hold aggregate in SQL: holds and the devices each one got."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository, cursor_time
from adapters.persistence.repositories.change_feed import (
    log_change,
    log_queue_change,
    note_queue_membership,
)
from adapters.persistence.repositories.test_runs import device_request_from, device_request_json
from application.errors import ConcurrentUpdate
from application.ports import HoldFilter
from domain.holds import HeldDevice, Hold, HoldStatus
from domain.scheduling import Priority

_UPDATE_HOLD = t.holds.update().where(
    t.holds.c.id == sa.bindparam("match_id"),
    t.holds.c.version == sa.bindparam("match_version"),
)


# only while the hold still waits: an estimate made before it left the queue is dropped
_SET_ESTIMATE = (
    t.holds.update()
    .where(t.holds.c.id == sa.bindparam("match_id"), t.holds.c.status == HoldStatus.WAITING.value)
    .values(estimated_start_at=sa.bindparam("estimate"))
)


def _hold_values(hold: Hold) -> dict[str, Any]:
    return {
        "status": hold.status.value,
        "holder": hold.holder,
        "reason": hold.reason,
        "priority": hold.priority.value,
        "duration_s": hold.duration_s,
        "requested_device_ids": list(hold.requested_device_ids),
        "device_requests": [device_request_json(r) for r in hold.device_requests],
        "queue_timeout_at": hold.queue_timeout_at,
        "created_at": hold.created_at,
        "started_at": hold.started_at,
        "expires_at": hold.expires_at,
        "ended_at": hold.ended_at,
        "ended_by": hold.ended_by,
        "end_reason": hold.end_reason,
    }


def _device_rows(hold: Hold) -> list[dict[str, Any]]:
    return [
        {
            "hold_id": hold.id,
            "position": position,
            "device_id": d.id,
            "name": d.name,
            "model": d.model,
            "role": d.role,
        }
        for position, d in enumerate(hold.devices)
    ]


class SqlHoldRepository(SqlRepository):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        # the devices as last read or written: they change once, when the hold starts
        self._known_devices: dict[str, tuple[HeldDevice, ...]] = {}
        self._known_waiting: dict[str, bool] = {}  # as read or written: for queue changes

    def add(self, hold: Hold) -> None:
        self._execute(
            sa.insert(t.holds), {"id": hold.id, **_hold_values(hold), "version": hold.version}
        )
        if hold.devices:
            self._execute(sa.insert(t.hold_devices), _device_rows(hold))
        self._known_devices[hold.id] = hold.devices
        log_change(self, "hold", hold.id)
        self._note_queue(hold, added=True)

    def update(self, hold: Hold) -> None:
        values = {
            **_hold_values(hold),
            "version": hold.version + 1,
            "match_id": hold.id,
            "match_version": hold.version,
        }
        if not hold.waiting:
            # a waiting hold's estimate is the worker's to write; the one loaded may be stale
            values["estimated_start_at"] = None
        if self._execute(_UPDATE_HOLD, values).rowcount != 1:
            raise ConcurrentUpdate(f"hold {hold.id} was changed meanwhile; retry")
        if self._known_devices.get(hold.id) != hold.devices:
            devices = t.hold_devices
            self._execute(sa.delete(devices).where(devices.c.hold_id == hold.id))
            if hold.devices:
                self._execute(sa.insert(devices), _device_rows(hold))
            self._known_devices[hold.id] = hold.devices
        log_change(self, "hold", hold.id)
        self._note_queue(hold)
        hold.version += 1

    def _note_queue(self, hold: Hold, added: bool = False) -> None:
        before = False if added else self._known_waiting.get(hold.id, not hold.waiting)
        note_queue_membership(self, f"hold:{hold.id}", before, hold.waiting)
        self._known_waiting[hold.id] = hold.waiting

    def list_active(self) -> list[Hold]:
        holds = t.holds
        return self._select(
            sa.select(holds)
            .where(holds.c.status == HoldStatus.ACTIVE.value)
            .order_by(holds.c.started_at, holds.c.id)
        )

    def set_estimated_starts(self, estimates: Mapping[str, datetime | None]) -> None:
        if not estimates:
            return
        # in id order, so that two writers lock the rows in the same order
        self._execute(
            _SET_ESTIMATE,
            [{"match_id": i, "estimate": at} for i, at in sorted(estimates.items())],
        )
        log_queue_change(self)

    def get(self, hold_id: str, for_update: bool = False) -> Hold | None:
        statement = sa.select(t.holds).where(t.holds.c.id == hold_id)
        if for_update:
            statement = statement.with_for_update()
        found = self._select(statement)
        return found[0] if found else None

    def list(self, where: HoldFilter, limit: int, after: tuple | None) -> list[Hold]:
        holds = t.holds
        statement = sa.select(holds)
        if where.status is not None:
            statement = statement.where(holds.c.status == HoldStatus(where.status).value)
        if where.holder is not None:
            statement = statement.where(holds.c.holder == where.holder)
        if where.device_id is not None:
            statement = statement.where(
                sa.select(t.hold_devices.c.hold_id)
                .where(
                    t.hold_devices.c.hold_id == holds.c.id,
                    t.hold_devices.c.device_id == where.device_id,
                )
                .exists()
            )
        if after is not None:
            after_time, after_id = cursor_time(after[0]), after[1]
            statement = statement.where(
                holds.c.created_at <= after_time,
                sa.or_(
                    holds.c.created_at < after_time,
                    sa.and_(holds.c.created_at == after_time, holds.c.id < after_id),
                ),
            )
        statement = statement.order_by(holds.c.created_at.desc(), holds.c.id.desc()).limit(limit)
        return self._select(statement)

    def list_waiting(self) -> list[Hold]:
        holds = t.holds
        waiting = self._select(
            sa.select(holds)
            .where(holds.c.status == HoldStatus.WAITING.value)
            .order_by(holds.c.created_at, holds.c.id)
        )
        return sorted(waiting, key=lambda h: -h.priority.rank)  # stable: age within priority

    def list_expired(self, now: datetime, limit: int) -> list[str]:
        holds = t.holds
        rows = self._execute(
            sa.select(holds.c.id)
            .where(holds.c.status == HoldStatus.ACTIVE.value, holds.c.expires_at <= now)
            .order_by(holds.c.expires_at, holds.c.id)
            .limit(limit)
        )
        return [row.id for row in rows]

    def _select(self, statement: sa.Select[Any]) -> list[Hold]:
        rows = self._execute(statement).all()
        if not rows:
            return []
        devices: dict[str, list[HeldDevice]] = {row.id: [] for row in rows}
        booked = t.hold_devices.c
        for part in self._execute(
            sa.select(t.hold_devices)
            .where(booked.hold_id.in_(list(devices)))
            .order_by(booked.hold_id, booked.position)
        ):
            devices[part.hold_id].append(
                HeldDevice(part.device_id, part.name, part.model, part.role)
            )
        loaded = []
        for row in rows:
            hold = Hold(
                id=row.id,
                holder=row.holder,
                reason=row.reason,
                duration_s=row.duration_s,
                created_at=row.created_at,
                priority=Priority(row.priority),
                requested_device_ids=tuple(row.requested_device_ids or ()),
                device_requests=tuple(device_request_from(r) for r in row.device_requests or ()),
                queue_timeout_at=row.queue_timeout_at,
                status=HoldStatus(row.status),
                devices=tuple(devices[row.id]),
                started_at=row.started_at,
                expires_at=row.expires_at,
                ended_at=row.ended_at,
                ended_by=row.ended_by,
                end_reason=row.end_reason,
                estimated_start_at=row.estimated_start_at,
                version=row.version,
            )
            self._known_devices[hold.id] = hold.devices
            self._known_waiting[hold.id] = hold.waiting
            loaded.append(hold)
        return loaded
