"""What changed since a client last looked: the feed behind the live event stream."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import QUEUE_CHANGE, Change, Clock
from application.ports import UnitOfWorkFactory as UowFactory
from application.use_cases.queue_estimates import QueueSummary, queue_now
from domain.devices import Device
from domain.holds import Hold
from domain.test_runs import TestRun


@dataclass(frozen=True)
class Update:
    change: Change
    device: Device | None = None  # the device as it is now (None when deleted)
    run: TestRun | None = None
    queue: QueueSummary | None = None  # the queue as it is now, for a queue change
    hold: Hold | None = None


class ChangeCursor:
    """A reader's position in the change feed. Ids are handed out when a change is written,
    so a transaction that commits late can add an id below one already read; the reader
    therefore looks `LOOKBACK` ids behind its position and skips the ids it has seen."""

    LOOKBACK = 200

    def __init__(self, position: int) -> None:
        self.position = position
        self.seen: set[int] = set()

    def fresh(self, changes: list[Change]) -> list[Change]:
        new = [c for c in changes if c.id not in self.seen]
        self.seen.update(c.id for c in new)
        if changes:
            self.position = max(self.position, changes[-1].id)
        floor = self.position - self.LOOKBACK
        self.seen = {i for i in self.seen if i > floor}
        return new


class ReadChanges:
    """Changes the cursor has not seen yet, each with the current state of what changed.
    Several changes of one entity in a batch collapse into the last: the state loaded is the
    latest anyway. So do the queue's: one summary of the queue per batch, however many runs
    entered or left it."""

    def __init__(self, uow: UowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def cursor(self, after_id: int | None = None) -> ChangeCursor:
        """A cursor at `after_id` (a client resuming), or at the end of the feed. What is in
        the feed up to there counts as seen."""
        with self.uow() as uow:
            position = uow.changes.latest_id() if after_id is None else after_id
            cursor = ChangeCursor(position)
            window = uow.changes.since(
                max(0, position - ChangeCursor.LOOKBACK), ChangeCursor.LOOKBACK
            )
            cursor.seen.update(c.id for c in window if c.id <= position)
            return cursor

    def __call__(self, cursor: ChangeCursor, limit: int = 200) -> list[Update]:
        with self.uow() as uow:
            window_start = max(0, cursor.position - ChangeCursor.LOOKBACK)
            changes = cursor.fresh(uow.changes.since(window_start, limit + ChangeCursor.LOOKBACK))
            if not changes:
                return []
            last_of: dict[tuple[str, str], Change] = {}
            for change in changes:
                last_of.pop((change.kind, change.entity_id), None)
                last_of[(change.kind, change.entity_id)] = change
            updates = []
            for change in last_of.values():
                if change.kind == "device":
                    device = None if change.deleted else uow.devices.get(change.entity_id)
                    updates.append(Update(change, device=device))
                elif change.kind == "run":
                    updates.append(Update(change, run=uow.test_runs.get(change.entity_id)))
                elif change.kind == QUEUE_CHANGE:
                    updates.append(Update(change, queue=queue_now(uow, self.clock.now())))
                elif change.kind == "hold":
                    updates.append(Update(change, hold=uow.holds.get(change.entity_id)))
                elif change.kind == "runner":
                    # only its id: a runner's state depends on the time it is read at, so
                    # the Runners page reads the registry again (GET /api/runners)
                    updates.append(Update(change))
            return updates
