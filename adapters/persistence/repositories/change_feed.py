"""The outbox of messages for the broker and the change log behind the live event stream."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from adapters.persistence import tables as t
from adapters.persistence.repositories.base import SqlRepository
from application.ports import (
    QUEUE_CHANGE,
    Change,
    OutboxMessage,
)

_INSERT_OUTBOX = t.outbox.insert()


_MARK_SENT = (
    t.outbox.update()
    .where(t.outbox.c.id == sa.bindparam("match_id"))
    .values(sent_at=sa.bindparam("at"), claimed_until=None, attempts=t.outbox.c.attempts + 1)
)


class SqlOutbox(SqlRepository):
    """Messages for the runners, stored in the transaction of the change they announce; a
    relay publishes the unsent ones (sent_at IS NULL) afterwards."""

    def add(self, message: OutboxMessage) -> None:
        self._execute(
            _INSERT_OUTBOX,
            {
                "id": message.id,
                "kind": message.kind,
                "run_id": message.run_id,
                "payload": message.payload,
                "created_at": message.created_at,
                "attempts": 0,
            },
        )

    def claim(self, now: datetime, until: datetime, limit: int) -> list[OutboxMessage]:
        box = t.outbox
        statement = (
            sa.select(box.c.id, box.c.kind, box.c.run_id, box.c.payload, box.c.created_at)
            .where(
                box.c.sent_at.is_(None),
                sa.or_(box.c.claimed_until.is_(None), box.c.claimed_until < now),
            )
            .order_by(box.c.created_at, box.c.id)
            .limit(limit)
            # concurrent relays on PostgreSQL skip each other's rows instead of waiting
            .with_for_update(skip_locked=True)
        )
        rows = self._execute(statement).all()
        if rows:
            self._execute(
                sa.update(box).where(box.c.id.in_([r.id for r in rows])).values(claimed_until=until)
            )
        return [OutboxMessage(r.id, r.kind, r.run_id, r.payload, r.created_at) for r in rows]

    def mark_sent(self, sent: Sequence[tuple[str, datetime]]) -> None:
        if sent:  # one executemany: a single round trip per page on PostgreSQL (engine.py)
            self._execute(_MARK_SENT, [{"match_id": i, "at": at} for i, at in sent])

    def release_claim(self, message_id: str) -> None:
        self._execute(
            sa.update(t.outbox)
            .where(t.outbox.c.id == message_id)
            .values(claimed_until=None, attempts=t.outbox.c.attempts + 1)
        )

    def purge_sent(self, before: datetime) -> int:
        result = self._execute(
            sa.delete(t.outbox).where(t.outbox.c.sent_at.is_not(None), t.outbox.c.sent_at < before)
        )
        return result.rowcount


PENDING_CHANGES = "devicelab.pending_changes"
CHANGES_CHANNEL = "devicelab_changes"  # the LISTEN/NOTIFY channel of the change log
_NOTIFY_CHANGES = sa.text(f"NOTIFY {CHANGES_CHANNEL}")
_QUEUE_NOTED = "devicelab.queue_change_noted"
_QUEUE_MOVES = "devicelab.queue_moves"


def log_change(repository: SqlRepository, kind: str, entity_id: str, deleted: bool = False) -> None:
    """Note a change for the change log; `write_logged_changes` writes the transaction's
    notes in one statement just before it commits (one round trip, not one per entity)."""
    repository.session.info.setdefault(PENDING_CHANGES, []).append(
        {"kind": kind, "entity_id": entity_id, "deleted": deleted, "at": datetime.now(UTC)}
    )


def log_queue_change(repository: SqlRepository) -> None:
    """Note that the queue changed (estimates moved): once per transaction."""
    repository.session.info[_QUEUE_NOTED] = True


def note_queue_membership(repository: SqlRepository, key: str, before: bool, now: bool) -> None:
    """An item (`key`: kind and id) was written; `before`: whether it was in the queue as
    read (False for a new one), `now`: whether it is now. The queue changed if some item's
    membership differs at commit from where the transaction found it: a run added as
    waiting and booked in the same transaction never was in the queue."""
    moves = repository.session.info.setdefault(_QUEUE_MOVES, {})
    moves[key] = (moves.get(key, (before, now))[0], now)


def write_logged_changes(session: Session) -> None:
    noted = session.info.pop(_QUEUE_NOTED, False)
    moves = session.info.pop(_QUEUE_MOVES, {})
    if noted or any(before != now for before, now in moves.values()):
        session.info.setdefault(PENDING_CHANGES, []).append(
            {
                "kind": QUEUE_CHANGE,
                "entity_id": QUEUE_CHANGE,
                "deleted": False,
                "at": datetime.now(UTC),
            }
        )
    pending = session.info.pop(PENDING_CHANGES, None)
    if pending:
        session.execute(t.change_log.insert(), pending)
        if session.get_bind().dialect.name == "postgresql":
            # delivered to the listeners when this transaction commits, never before, and
            # not at all when it rolls back (change_signal.PostgresChangeSignal)
            session.execute(_NOTIFY_CHANGES)


def forget_logged_changes(session: Session) -> None:
    session.info.pop(_QUEUE_NOTED, None)
    session.info.pop(_QUEUE_MOVES, None)
    session.info.pop(PENDING_CHANGES, None)


# the look-back of the live stream's readers (application.use_cases.live_updates.ChangeCursor)
POSITION_WINDOW = 200
_LATEST = sa.select(sa.func.max(t.change_log.c.id)).scalar_subquery()
# two walks of the primary key's end; built once
_POSITION = sa.select(
    _LATEST,
    sa.select(sa.func.count())
    .where(t.change_log.c.id > _LATEST - sa.bindparam("window"))
    .scalar_subquery(),
)


class SqlChangeFeed(SqlRepository):
    """The change log in id order. Ids are assigned at insert, and a transaction that
    commits late can hold a smaller id than one already read; readers therefore re-read a
    short window behind their position (see `since`)."""

    def since(self, after_id: int, limit: int) -> list[Change]:
        log = t.change_log
        rows = self._execute(
            sa.select(log).where(log.c.id > after_id).order_by(log.c.id).limit(limit)
        ).all()
        return [Change(r.id, r.kind, r.entity_id, r.at, r.deleted) for r in rows]

    def latest_id(self) -> int:
        return self._execute(sa.select(sa.func.max(t.change_log.c.id))).scalar() or 0

    def position(self) -> str:
        latest, in_window = self._execute(_POSITION, {"window": POSITION_WINDOW}).one()
        return f"{latest or 0}.{in_window}"

    def purge(self, before: datetime) -> int:
        """The changes before `before`, but never the newest: SQLite hands out the next id
        after the largest one left, and an id (a position) that came back would let a kept
        answer or an ETag of long ago pass for the lab as it is now."""
        log = t.change_log.c
        newest = sa.select(sa.func.max(log.id)).scalar_subquery()
        return self._execute(
            sa.delete(t.change_log).where(log.at < before, log.id < newest)
        ).rowcount
