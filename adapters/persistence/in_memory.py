"""An in-memory unit of work and repositories, real enough to run the whole app on.

Entities are copied in and out, so a use case that forgets to `update()` what it changed
loses the change here just as it would on a database. A unit of work holds one lock for its
whole life, so concurrent requests are serialised the way a database would serialise them."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, Self, TypeVar

from adapters.persistence.health_checks_in_memory import InMemoryHealthChecks
from adapters.persistence.plans_in_memory import (
    InMemoryFirmwareSightings,
    InMemoryPlanRuns,
    InMemoryPlans,
    InMemoryPlanTables,
)
from adapters.persistence.results_in_memory import InMemoryResults
from adapters.persistence.run_logs_in_memory import (
    InMemoryArtifacts,
    InMemoryRunLogs,
    InMemoryRunLogTables,
)
from adapters.persistence.runners_in_memory import InMemoryRunners
from adapters.persistence.trends_in_memory import InMemoryTrends
from adapters.persistence.utilisation_in_memory import InMemoryTimelines
from adapters.persistence.webhooks_in_memory import InMemoryWebhooks, InMemoryWebhookTables
from application.errors import AlreadyExists, ConcurrentUpdate
from application.ports import (
    QUEUE_CHANGE,
    Change,
    DeviceFilter,
    HoldFilter,
    LabStatistics,
    NameFilter,
    OutboxMessage,
    RunFilter,
    StreamLease,
)
from domain.devices import Device, DeviceStatus, ServiceState, StatusChange
from domain.environments import Environment
from domain.health_checks import HealthCheck
from domain.holds import Hold, HoldStatus
from domain.names import name_key
from domain.queueing import device_view
from domain.runners import Runner
from domain.scheduling import Signature
from domain.test_cases import TestCase
from domain.test_runs import RunStatus, TestRun, Verdict

E = TypeVar("E", Device, TestCase, Environment, TestRun, Hold)


@dataclass
class InMemoryStore:
    """What a database would hold; shared by every unit of work made from it."""

    devices: dict[str, Device] = field(default_factory=dict)
    history: dict[str, list[StatusChange]] = field(default_factory=dict)
    test_cases: dict[str, TestCase] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    test_runs: dict[str, TestRun] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    outbox: list[OutboxMessage] = field(default_factory=list)
    # per outbox message id: sent_at, claimed_until, attempts
    outbox_state: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    stream_leases: dict[str, StreamLease] = field(default_factory=dict)
    webhooks: InMemoryWebhookTables = field(default_factory=InMemoryWebhookTables)
    plans: InMemoryPlanTables = field(default_factory=InMemoryPlanTables)
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    runners: dict[str, Runner] = field(default_factory=dict)
    run_logs: InMemoryRunLogTables = field(default_factory=InMemoryRunLogTables)
    lock: threading.RLock = field(default_factory=threading.RLock)


class _StagedTable(Generic[E]):
    def __init__(self, committed: dict[str, E]) -> None:
        self.committed = committed
        self.staged: dict[str, E | None] = {}

    def get(self, key: str) -> E | None:
        return copy.deepcopy(self.peek(key))

    def peek(self, key: str) -> E | None:
        """The entity as stored, not a copy: only to look at."""
        return self.staged[key] if key in self.staged else self.committed.get(key)

    def put(self, entity: E) -> None:
        self.staged[entity.id] = copy.deepcopy(entity)

    def delete(self, key: str) -> None:
        self.staged[key] = None

    def all(self) -> Iterable[E]:
        keys = set(self.committed) | set(self.staged)
        for key in keys:
            entity = self.get(key)
            if entity is not None:
                yield entity

    def apply(self) -> None:
        for key, entity in self.staged.items():
            if entity is None:
                self.committed.pop(key, None)
            else:
                self.committed[key] = entity
        self.staged.clear()


def _page(
    items: Iterable[E],
    key: Callable[[E], tuple],
    limit: int,
    after: tuple | None,
    descending: bool = False,
) -> list[E]:
    ordered = sorted(items, key=key, reverse=descending)
    if after is not None:
        after = tuple(after)
        ordered = [i for i in ordered if (key(i) < after if descending else key(i) > after)]
    return ordered[:limit]


def _name_key(item: TestCase | Environment | Device) -> tuple:
    return (item.name, item.id)


def _named(table: _StagedTable, name: str) -> Any:
    key = name_key(name)
    return next((e for e in table.all() if e.name_key == key), None)


def _refuse_taken_name(table: _StagedTable, entity: Any, kind: str) -> None:
    """What the database's unique index on the name key does."""
    other = _named(table, entity.name)
    if other is not None and other.id != entity.id:
        raise AlreadyExists(kind, "name", entity.name, other.name, other.id)


class InMemoryDeviceRepository:
    def __init__(self, store: InMemoryStore, changes: InMemoryChangeFeed) -> None:
        self.table: _StagedTable[Device] = _StagedTable(store.devices)
        self.store = store
        self.changes = changes
        self.new_history: list[tuple[str, StatusChange]] = []

    def add(self, device: Device) -> None:
        self.update(device)

    def update(self, device: Device) -> None:
        _refuse_taken_name(self.table, device, "device")
        self.new_history.extend((device.id, change) for change in device.new_history)
        device.new_history.clear()
        device.version += 1
        self.table.put(device)
        self.changes.record("device", device.id)

    def remove(self, device: Device) -> None:
        self.table.delete(device.id)
        self.changes.record("device", device.id, deleted=True)

    def get(self, device_id: str) -> Device | None:
        return self.table.get(device_id)

    def get_by_name(self, name: str) -> Device | None:
        return _named(self.table, name)

    def get_many_for_update(self, device_ids: Sequence[str]) -> list[Device]:
        found = [self.table.get(i) for i in sorted(set(device_ids))]
        return [d for d in found if d is not None]

    def list(self, where: DeviceFilter, limit: int, after: tuple | None) -> list[Device]:
        def matches(d: Device) -> bool:
            if not where.shows(d.status):
                return False
            if where.text:
                text = where.text.lower()
                fields = (d.name, d.serial, d.model, d.location, d.firmware_version)
                if not any(text in f.lower() for f in fields):
                    return False
            if where.label is not None:
                key, value = where.label
                if key not in d.labels or (value is not None and d.labels[key] != value):
                    return False
            return True

        return _page((d for d in self.table.all() if matches(d)), _name_key, limit, after)

    def list_relevant(
        self, device_ids: Sequence[str], signatures: Sequence[Signature]
    ) -> list[Device]:
        named = set(device_ids)
        found = [
            d
            for d in self.table.all()
            if d.id in named or any(s.matches(device_view(d)) for s in signatures)
        ]
        return sorted(found, key=_name_key)

    def list_silent(self, seen_before: datetime, limit: int) -> list[Device]:
        silent = [
            d
            for d in self.table.all()
            if d.service_state is ServiceState.IN_SERVICE
            and d.last_seen_at is not None
            and d.last_seen_at < seen_before
        ]
        return sorted(silent, key=lambda d: d.id)[:limit]

    def history(self, device_id: str, limit: int) -> list[StatusChange]:
        committed = self.store.history.get(device_id, [])
        staged = [c for i, c in self.new_history if i == device_id]
        return list(reversed(committed + staged))[:limit]

    def apply(self) -> None:
        removed = [key for key, entity in self.table.staged.items() if entity is None]
        self.table.apply()
        for key in removed:
            self.store.history.pop(key, None)
        for device_id, change in self.new_history:
            if device_id in self.store.devices:
                self.store.history.setdefault(device_id, []).append(change)
        self.new_history.clear()


class _InMemoryNamedRepository(Generic[E]):
    def __init__(
        self, committed: dict[str, E], kind: str, changes: InMemoryChangeFeed, change_kind: str
    ) -> None:
        self.table: _StagedTable[E] = _StagedTable(committed)
        self.kind, self.changes, self.change_kind = kind, changes, change_kind

    def add(self, entity: E) -> None:
        self.update(entity)

    def update(self, entity: E) -> None:
        _refuse_taken_name(self.table, entity, self.kind)
        self.table.put(entity)
        self.changes.record(self.change_kind, entity.id)

    def remove(self, entity: E) -> None:
        self.table.delete(entity.id)
        self.changes.record(self.change_kind, entity.id, deleted=True)

    def get(self, entity_id: str) -> E | None:
        return self.table.get(entity_id)

    def get_by_name(self, name: str) -> E | None:
        return _named(self.table, name)

    def _matches(self, entity: E, where: NameFilter) -> bool:
        if where.text and where.text.lower() not in entity.name.lower():
            return False
        return not (where.tag and where.tag not in getattr(entity, "tags", ()))

    def list(self, where: NameFilter, limit: int, after: tuple | None) -> list[E]:
        return _page(
            (e for e in self.table.all() if self._matches(e, where)), _name_key, limit, after
        )


class InMemoryTestRunRepository:
    __test__ = False

    def __init__(self, store: InMemoryStore, changes: InMemoryChangeFeed) -> None:
        self.table: _StagedTable[TestRun] = _StagedTable(store.test_runs)
        self.changes = changes

    def add(self, run: TestRun) -> None:
        self.table.put(run)
        self.changes.record("run", run.id)
        self.changes.note_queue_membership(f"run:{run.id}", False, run.waiting)

    def update(self, run: TestRun) -> None:
        before = self.table.peek(run.id)
        was_waiting = not run.waiting if before is None else before.waiting
        run.version += 1
        self.table.put(run)
        self.changes.record("run", run.id)
        self.changes.note_queue_membership(f"run:{run.id}", was_waiting, run.waiting)

    def get(self, run_id: str, for_update: bool = False) -> TestRun | None:
        return self.table.get(run_id)

    def list(self, where: RunFilter, limit: int, after: tuple | None) -> list[TestRun]:
        def matches(r: TestRun) -> bool:
            checks: list[Any] = [
                where.status is None or r.status is where.status,
                where.verdict is None or r.verdict is where.verdict,
                where.purpose is None or r.purpose is where.purpose,
                where.device_id is None or where.device_id in r.device_ids,
                where.environment_id is None or r.environment.id == where.environment_id,
                where.runner is None or r.runner == where.runner,
                where.test_case_id is None or any(c.id == where.test_case_id for c in r.test_cases),
                where.firmware is None
                or any(d.firmware_version == where.firmware for d in r.devices),
                where.created_from is None or r.created_at >= where.created_from,
                where.created_to is None or r.created_at <= where.created_to,
            ]
            return all(checks)

        return _page(
            (r for r in self.table.all() if matches(r)),
            lambda r: (r.created_at.isoformat(), r.id),
            limit,
            after,
            descending=True,
        )

    def list_overdue(self, now: datetime, limit: int) -> list[str]:
        overdue = [r for r in self.table.all() if r.is_overdue(now)]
        return [r.id for r in sorted(overdue, key=lambda r: r.deadline)[:limit]]

    def list_silent_claims(
        self, heard_before: datetime, max_reoffers: int, limit: int
    ) -> list[str]:
        # a silence of "more than 0 s before heard_before" is one that began before it
        silent = [
            r for r in self.table.all() if r.claimant_fell_silent(heard_before, 0, max_reoffers)
        ]
        silent.sort(key=lambda r: (r.last_report_at or r.started_at or heard_before, r.id))
        return [r.id for r in silent[:limit]]

    def list_waiting(self) -> list[TestRun]:
        waiting = [r for r in self.table.all() if r.status is RunStatus.WAITING]
        return sorted(waiting, key=lambda r: (-r.priority.rank, r.created_at, r.id))

    def lock_queue(self) -> None:
        """Nothing to do: an in-memory unit of work is only used by one thread at a time."""

    def list_booked(self) -> list[TestRun]:
        booked = [r for r in self.table.all() if r.holds_devices]
        return sorted(booked, key=lambda r: (r.created_at, r.id))

    def measured_case_durations(self, case_ids: Sequence[str], last: int) -> dict[str, list[float]]:
        wanted = set(case_ids)
        spans: dict[str, list[tuple[datetime, float]]] = {}
        for run in self.table.all():
            if run.status is not RunStatus.COMPLETED or run.finished_at is None:
                continue
            for case_id in wanted & {c.id for c in run.test_cases}:
                stamped = [
                    r
                    for r in run.results.values()
                    if r.test_case_id == case_id and r.started_at and r.finished_at
                ]
                if stamped:
                    began = min(r.started_at for r in stamped if r.started_at)
                    ended = max(r.finished_at for r in stamped if r.finished_at)
                    seconds = max(0.0, (ended - began).total_seconds())
                    spans.setdefault(case_id, []).append((run.finished_at, seconds))
        return {
            case_id: [s for _, s in sorted(found, key=lambda f: f[0], reverse=True)[:last]]
            for case_id, found in spans.items()
        }

    def set_estimated_starts(self, estimates: Mapping[str, datetime | None]) -> None:
        for run_id, at in estimates.items():
            run = self.table.get(run_id)
            if run is not None and run.waiting:
                run.estimated_start_at = at  # no version bump, as in SQL
                self.table.put(run)
        if estimates:
            self.changes.record(QUEUE_CHANGE, QUEUE_CHANGE)


class InMemoryHoldRepository:
    def __init__(self, store: InMemoryStore, changes: InMemoryChangeFeed) -> None:
        self.table: _StagedTable[Hold] = _StagedTable(store.holds)
        self.changes = changes

    def add(self, hold: Hold) -> None:
        self.table.put(hold)
        self.changes.record("hold", hold.id)
        self.changes.note_queue_membership(f"hold:{hold.id}", False, hold.waiting)

    def update(self, hold: Hold) -> None:
        stored = self.table.get(hold.id)
        if stored is None or stored.version != hold.version:
            raise ConcurrentUpdate(f"hold {hold.id} was changed meanwhile; retry")
        hold.version += 1
        self.table.put(hold)
        self.changes.record("hold", hold.id)
        self.changes.note_queue_membership(f"hold:{hold.id}", stored.waiting, hold.waiting)

    def list_active(self) -> list[Hold]:
        active = [h for h in self.table.all() if h.active]
        return sorted(active, key=lambda h: (h.started_at, h.id))

    def set_estimated_starts(self, estimates: Mapping[str, datetime | None]) -> None:
        for hold_id, at in estimates.items():
            hold = self.table.get(hold_id)
            if hold is not None and hold.waiting:
                hold.estimated_start_at = at  # no version bump, as in SQL
                self.table.put(hold)
        if estimates:
            self.changes.record(QUEUE_CHANGE, QUEUE_CHANGE)

    def get(self, hold_id: str, for_update: bool = False) -> Hold | None:
        return self.table.get(hold_id)

    def list(self, where: HoldFilter, limit: int, after: tuple | None) -> list[Hold]:
        def matches(h: Hold) -> bool:
            return (
                (where.status is None or h.status is where.status)
                and (where.holder is None or h.holder == where.holder)
                and (where.device_id is None or where.device_id in h.device_ids)
            )

        return _page(
            (h for h in self.table.all() if matches(h)),
            lambda h: (h.created_at.isoformat(), h.id),
            limit,
            after,
            descending=True,
        )

    def list_waiting(self) -> list[Hold]:
        waiting = [h for h in self.table.all() if h.status is HoldStatus.WAITING]
        return sorted(waiting, key=lambda h: (-h.priority.rank, h.created_at, h.id))

    def list_expired(self, now: datetime, limit: int) -> list[str]:
        expired = [h for h in self.table.all() if h.is_expired(now)]
        return [h.id for h in sorted(expired, key=lambda h: (h.expires_at, h.id))[:limit]]


class InMemoryOutbox:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.staged: list[OutboxMessage] = []
        self.staged_state: dict[str, dict[str, Any]] = {}
        self.purged: set[str] = set()

    def add(self, message: OutboxMessage) -> None:
        self.staged.append(message)
        self.staged_state[message.id] = {"sent_at": None, "claimed_until": None, "attempts": 0}

    def _state(self, message_id: str) -> dict[str, Any]:
        if message_id not in self.staged_state:
            committed = self.store.outbox_state.get(
                message_id, {"sent_at": None, "claimed_until": None, "attempts": 0}
            )
            self.staged_state[message_id] = dict(committed)
        return self.staged_state[message_id]

    def claim(self, now: datetime, until: datetime, limit: int) -> list[OutboxMessage]:
        claimed = []
        for message in sorted(self.store.outbox, key=lambda m: (m.created_at, m.id)):
            state = self._state(message.id)
            claim = state["claimed_until"]
            if state["sent_at"] is None and (claim is None or claim < now):
                state["claimed_until"] = until
                claimed.append(message)
                if len(claimed) == limit:
                    break
        return claimed

    def mark_sent(self, sent: Sequence[tuple[str, datetime]]) -> None:
        for message_id, at in sent:
            state = self._state(message_id)
            state.update(sent_at=at, claimed_until=None, attempts=state["attempts"] + 1)

    def release_claim(self, message_id: str) -> None:
        state = self._state(message_id)
        state.update(claimed_until=None, attempts=state["attempts"] + 1)

    def purge_sent(self, before: datetime) -> int:
        doomed = {
            m.id
            for m in self.store.outbox
            if (sent := self._state(m.id)["sent_at"]) is not None and sent < before
        }
        self.purged = doomed
        return len(doomed)

    def apply(self) -> None:
        self.store.outbox.extend(self.staged)
        self.store.outbox_state.update(self.staged_state)
        doomed = self.purged
        if doomed:
            self.store.outbox[:] = [m for m in self.store.outbox if m.id not in doomed]
            for message_id in doomed:
                self.store.outbox_state.pop(message_id, None)
        self.staged.clear()
        self.staged_state.clear()
        self.purged = set()


class InMemoryChangeFeed:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.staged: list[tuple[str, str, bool]] = []
        self.queue_moves: dict[str, tuple[bool, bool]] = {}
        self.purge_before: datetime | None = None

    def record(self, kind: str, entity_id: str, deleted: bool = False) -> None:
        if kind == QUEUE_CHANGE and (kind, entity_id, deleted) in self.staged:
            return  # once per transaction, as in SQL
        self.staged.append((kind, entity_id, deleted))

    def note_queue_membership(self, key: str, before: bool, now: bool) -> None:
        """As in SQL (change_feed.note_queue_membership): the queue changed if an item's
        membership at commit differs from where the transaction found it."""
        self.queue_moves[key] = (self.queue_moves.get(key, (before, now))[0], now)

    def since(self, after_id: int, limit: int) -> list[Change]:
        return [c for c in self.store.changes if c.id > after_id][:limit]

    def latest_id(self) -> int:
        return self.store.changes[-1].id if self.store.changes else 0

    def position(self) -> str:
        latest = self.latest_id()
        window = sum(1 for c in self.store.changes if c.id > latest - 200)
        return f"{latest}.{window}"

    def purge(self, before: datetime) -> int:
        self.purge_before = before  # never the newest change, as in SQL
        return sum(1 for c in self.store.changes[:-1] if c.at < before)

    def apply(self, at: datetime) -> None:
        if self.purge_before is not None:
            changes = self.store.changes
            changes[:-1] = [c for c in changes[:-1] if c.at >= self.purge_before]
        if any(before != now for before, now in self.queue_moves.values()):
            self.record(QUEUE_CHANGE, QUEUE_CHANGE)
        self.queue_moves.clear()
        next_id = self.latest_id() + 1
        for offset, (kind, entity_id, deleted) in enumerate(self.staged):
            self.store.changes.append(Change(next_id + offset, kind, entity_id, at, deleted))
        self.staged.clear()
        self.purge_before = None


class InMemoryStreamLeases:
    """Leases staged until commit; a second lease on a held (user, slot) is refused as the
    database's unique key refuses it."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.staged: dict[str, StreamLease | None] = {}

    def _all(self) -> list[StreamLease]:
        merged = {**self.store.stream_leases, **self.staged}
        return [lease for lease in merged.values() if lease is not None]

    def of_user(self, user_id: str) -> list[StreamLease]:
        return sorted((s for s in self._all() if s.user_id == user_id), key=lambda s: s.slot)

    def add(self, lease: StreamLease) -> None:
        if any(s.user_id == lease.user_id and s.slot == lease.slot for s in self._all()):
            raise ConcurrentUpdate(f"stream slot {lease.slot} of the user is already held")
        self.staged[lease.id] = lease

    def renew_all(self, lease_ids: list[str], expires_at: datetime) -> set[str]:
        wanted = set(lease_ids)
        current = [s for s in self._all() if s.id in wanted]
        for lease in current:
            self.staged[lease.id] = replace(lease, expires_at=expires_at)
        return {lease.id for lease in current}

    def remove(self, lease_id: str) -> None:
        self.staged[lease_id] = None

    def remove_expired(self, now: datetime) -> int:
        expired = [s.id for s in self._all() if s.expires_at <= now]
        for lease_id in expired:
            self.staged[lease_id] = None
        return len(expired)

    def apply(self) -> None:
        for lease_id, lease in self.staged.items():
            if lease is None:
                self.store.stream_leases.pop(lease_id, None)
            else:
                self.store.stream_leases[lease_id] = lease
        self.staged.clear()


class InMemoryStatistics:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store

    def lab_statistics(self, since: datetime, top: int) -> LabStatistics:
        devices = list(self.store.devices.values())
        runs = list(self.store.test_runs.values())
        per_day: dict[tuple[str, str], int] = {}
        failures: dict[str, int] = {}
        counted: dict[str, int] = {}
        names: dict[str, str] = {}
        for run in runs:
            if run.finished_at is None or run.finished_at < since or run.is_health_check:
                continue
            if run.status is RunStatus.COMPLETED and run.verdict is not None:
                key = (run.finished_at.astimezone(UTC).date().isoformat(), run.verdict.value)
                per_day[key] = per_day.get(key, 0) + 1
            for case in run.test_cases:
                counted[case.id] = counted.get(case.id, 0) + 1
                names[case.id] = case.name
                if any(
                    r.test_case_id == case.id and r.verdict is Verdict.FAIL
                    for r in run.results.values()
                ):
                    failures[case.id] = failures.get(case.id, 0) + 1
        ranked = sorted(failures.items(), key=lambda item: (-item[1], item[0]))[:top]
        waiting = [r.created_at for r in runs if r.waiting]
        waiting += [h.created_at for h in self.store.holds.values() if h.waiting]
        return LabStatistics(
            devices_by_status={
                s.value: sum(1 for d in devices if d.status is s) for s in DeviceStatus
            },
            runs_by_status={s.value: sum(1 for r in runs if r.status is s) for s in RunStatus},
            verdicts_by_day=sorted((day, verdict, n) for (day, verdict), n in per_day.items()),
            most_failing_test_cases=[
                (case_id, names[case_id], n, counted[case_id]) for case_id, n in ranked
            ],
            waiting=len(waiting),
            oldest_waiting_since=min(waiting, default=None),
        )


class InMemoryUnitOfWork:
    def __init__(self, store: InMemoryStore, read_only: bool = False) -> None:
        self.store, self.read_only = store, read_only

    def __enter__(self) -> Self:
        self.store.lock.acquire()
        self.changes = InMemoryChangeFeed(self.store)
        self.statistics = InMemoryStatistics(self.store)
        self.results = InMemoryResults(self.store.test_runs)
        self.trends = InMemoryTrends(self.store.test_runs)
        self.utilisation = InMemoryTimelines(self.store)
        self.devices = InMemoryDeviceRepository(self.store, self.changes)
        self.test_cases: _InMemoryNamedRepository[TestCase] = _InMemoryNamedRepository(
            self.store.test_cases, "test case", self.changes, "test_case"
        )
        self.environments: _InMemoryNamedRepository[Environment] = _InMemoryNamedRepository(
            self.store.environments, "environment", self.changes, "environment"
        )
        self.test_runs = InMemoryTestRunRepository(self.store, self.changes)
        self.holds = InMemoryHoldRepository(self.store, self.changes)
        self.outbox = InMemoryOutbox(self.store)
        self.stream_leases = InMemoryStreamLeases(self.store)
        self.webhooks = InMemoryWebhooks(self.store.webhooks)
        self.plans = InMemoryPlans(self.store.plans)
        self.plan_runs = InMemoryPlanRuns(self.plans)
        self.firmware_sightings = InMemoryFirmwareSightings(self.plans)
        # the committed runs: a health check under way is one a committed pass made
        self.health_checks = InMemoryHealthChecks(self.store.health_checks, self.store.test_runs)
        self.runners = InMemoryRunners(
            self.store.runners, lambda: list(self.test_runs.table.all()), self.changes.record
        )
        self.run_logs = InMemoryRunLogs(self.store.run_logs, lambda: self.store.test_runs)
        self.artifacts = InMemoryArtifacts(self.store.run_logs)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.rollback()
        finally:
            self.store.lock.release()

    def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self.devices.apply()
        self.test_cases.table.apply()
        self.environments.table.apply()
        self.test_runs.table.apply()
        self.holds.table.apply()
        self.outbox.apply()
        self.stream_leases.apply()
        self.webhooks.apply()
        self.plans.apply()
        self.health_checks.apply()
        self.runners.apply()
        self.run_logs.apply()
        self.artifacts.apply()
        self.changes.apply(datetime.now(UTC))

    def rollback(self) -> None:
        for table in (
            self.devices.table,
            self.test_cases.table,
            self.environments.table,
            self.test_runs.table,
            self.holds.table,
        ):
            table.staged.clear()
        self.devices.new_history.clear()
        self.outbox.staged.clear()
        self.outbox.staged_state.clear()
        self.stream_leases.staged.clear()
        self.webhooks.clear()
        self.plans.clear()
        self.health_checks.staged.clear()
        self.runners.staged.clear()
        self.run_logs.clear()
        self.artifacts.clear()
        self.outbox.purged = set()
        self.changes.staged.clear()
        self.changes.queue_moves.clear()
        self.changes.purge_before = None
