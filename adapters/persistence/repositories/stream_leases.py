"""Leases of open event streams: the per-user cap across every API process."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository, violates
from application.errors import ConcurrentUpdate
from application.ports import StreamLease

_SLOT_KEY = "uq_stream_leases_user_id_slot"


class SqlStreamLeases(SqlRepository):
    def of_user(self, user_id: str) -> list[StreamLease]:
        leases = t.stream_leases
        rows = self._execute(
            sa.select(leases).where(leases.c.user_id == user_id).order_by(leases.c.slot)
        ).all()
        return [StreamLease(r.id, r.user_id, r.slot, r.expires_at) for r in rows]

    def add(self, lease: StreamLease) -> None:
        values = {
            "id": lease.id,
            "user_id": lease.user_id,
            "slot": lease.slot,
            "expires_at": lease.expires_at,
        }
        try:
            self._execute(t.stream_leases.insert().values(**values))
        except IntegrityError as error:
            if violates(error, (_SLOT_KEY,), "stream_leases.user_id, stream_leases.slot"):
                raise ConcurrentUpdate(
                    f"stream slot {lease.slot} of the user was taken meanwhile"
                ) from error
            raise

    def renew_all(self, lease_ids: list[str], expires_at: datetime) -> set[str]:
        if not lease_ids:
            return set()
        leases = t.stream_leases
        renewed = self._execute(
            leases.update()
            .where(leases.c.id.in_(lease_ids))
            .values(expires_at=expires_at)
            .returning(leases.c.id)
        )
        return set(renewed.scalars())

    def remove(self, lease_id: str) -> None:
        self._execute(sa.delete(t.stream_leases).where(t.stream_leases.c.id == lease_id))

    def remove_expired(self, now: datetime) -> int:
        leases = t.stream_leases
        return self._execute(sa.delete(leases).where(leases.c.expires_at <= now)).rowcount
