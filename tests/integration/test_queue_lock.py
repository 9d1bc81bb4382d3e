"""The queue lock on PostgreSQL, proved by the race it prevents.

Row locks and version checks alone already keep a device from being booked twice (a second
pass waits for the device row and finds it taken). What they cannot see is a run that is not
committed yet: a start asking for devices by kind locks no device row while it waits, so
without the queue lock a second start, submitted after it, reads the queue without it and
takes a device it could use: overtaking, against the queue's first rule. Here the first start
is held just before its commit (its pass has decided: it waits, keeping the free meter), and
the second start runs meanwhile in another connection.

The second test takes the lock away (a no-op `lock_queue`) and shows the overtaking happen:
the first test fails the same way when `lock_queue` does nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from adapters.persistence.repositories import SqlTestRunRepository
from application.use_cases.test_runs import StartTestRun, StartTestRunRequest
from domain.scheduling import DeviceRequest
from domain.test_runs import RunStatus, TestRun

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]

HOLD_S = 1.5  # how long the first start is held before it commits


class _HeldBeforeCommit:
    """A unit-of-work factory whose units of work signal `reached` when they are about to
    commit and wait for `go` first."""

    def __init__(self, new_uow: Any) -> None:
        self.new_uow = new_uow
        self.reached, self.go = threading.Event(), threading.Event()

    def __call__(self, read_only: bool = False) -> Any:
        uow = self.new_uow(read_only=read_only)
        commit = uow.commit

        def held_commit() -> None:
            self.reached.set()
            self.go.wait(30)
            commit()

        uow.commit = held_commit
        return uow


def _race(lab: Any, new_uow: Any) -> tuple[TestRun, TestRun]:
    """A first run asks for two meters while only one is free (it waits, keeping it); a
    second run asking for one meter starts while the first is still uncommitted."""
    meters = [lab.add_device(f"meter-{n}", model="EM-340") for n in (1, 2)]
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    lab.start([meters[1]], [case], environment)  # meter-2 busy

    def request(count: int) -> StartTestRunRequest:
        return StartTestRunRequest(
            [case.id],
            environment.id,
            [],
            device_requests=[DeviceRequest(model="EM-340", count=count)],
        )

    held = _HeldBeforeCommit(new_uow)
    first_start = StartTestRun(held, lab.clock, lab.ids)
    outcome: dict[str, Any] = {}

    def first() -> None:
        outcome["first"] = first_start(request(2))

    def second() -> None:
        outcome["second"] = lab.start_test_run(request(1))

    first_thread = threading.Thread(target=first)
    first_thread.start()
    assert held.reached.wait(30), "the first start never got to its commit"
    lab.clock.advance(1)  # submitted after the first
    second_thread = threading.Thread(target=second)
    second_thread.start()
    second_thread.join(HOLD_S)  # with the lock it waits for the first to commit
    held.go.set()
    first_thread.join(30)
    second_thread.join(30)
    assert not first_thread.is_alive() and not second_thread.is_alive()
    return lab.get_test_run(outcome["first"].id), lab.get_test_run(outcome["second"].id)


def test_with_the_queue_lock_a_later_start_does_not_overtake_an_uncommitted_one(
    lab: Any, new_uow: Any
) -> None:
    first, second = _race(lab, new_uow)
    assert first.status is RunStatus.WAITING
    # the free meter is kept for the first run: the later one waits behind it
    assert second.status is RunStatus.WAITING, "the later run overtook the waiting one"
    assert first.created_at < second.created_at


def test_without_the_queue_lock_the_later_start_overtakes(
    lab: Any, new_uow: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SqlTestRunRepository, "lock_queue", lambda self: None)
    first, second = _race(lab, new_uow)
    assert first.status is RunStatus.WAITING
    assert second.status is RunStatus.QUEUED  # it took the meter the first run could use
