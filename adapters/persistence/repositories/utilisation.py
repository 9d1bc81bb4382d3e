"""Every device's status timeline in a window, for utilisation per day
(application.ports.StatusTimelines).

On ix_device_status_changes_device_id_id: per device, the last change before the window is
found walking that device's changes backwards from the newest (ORDER BY id DESC LIMIT 1, the
`at` filter stops the walk there), and the window's changes are the range after its id."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository
from domain.devices import DeviceStatus
from domain.utilisation import Timeline


class SqlTimelines(SqlRepository):
    def timelines(self, start: datetime, end: datetime) -> list[Timeline]:
        devices, changes = t.devices.c, t.device_status_changes
        before = changes.alias("before")
        last_before = (
            sa.select(before.c.id)
            .where(before.c.device_id == devices.id, before.c.at < start)
            .order_by(before.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        rows = self._execute(
            sa.select(devices.id, devices.status, devices.created_at, last_before.label("before"))
        ).all()
        status_before = {
            row.id: DeviceStatus(row.to_status)
            for row in self._execute(
                sa.select(changes.c.id, changes.c.to_status).where(
                    changes.c.id.in_([r.before for r in rows if r.before is not None])
                )
            )
        }
        window: dict[str, list] = {}
        for row in rows:
            found = self._execute(
                sa.select(changes.c.at, changes.c.from_status, changes.c.to_status)
                .where(
                    changes.c.device_id == row.id,
                    changes.c.id > (row.before if row.before is not None else 0),
                    changes.c.at < end,
                )
                .order_by(changes.c.id)
            ).all()
            window[row.id] = found
        timelines = []
        for row in sorted(rows, key=lambda r: r.id):
            within = window[row.id]
            if row.before is not None:
                initial = status_before[row.before]
            elif within:
                initial = DeviceStatus(within[0].from_status)
            else:
                initial = DeviceStatus(row.status)
            since = max(start, row.created_at) if row.created_at else start
            timelines.append(
                Timeline(
                    row.id,
                    since,
                    initial,
                    tuple((c.at, DeviceStatus(c.to_status)) for c in within),
                )
            )
        return timelines
