"""ReadLabVersion.then_read: the lab's version, then (unless the caller has that version's
answer) what the caller reads, in one read-only unit of work (the device list's ETag path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.ports import DeviceFilter
from application.use_cases.devices import ListDevices, RegisterDevice, RegisterDeviceRequest
from application.use_cases.lab_version import ReadLabVersion


class CountingUow:
    def __init__(self, store: InMemoryStore) -> None:
        self.store, self.opened = store, []

    def __call__(self, read_only: bool = False) -> InMemoryUnitOfWork:
        self.opened.append(read_only)
        return InMemoryUnitOfWork(self.store, read_only=read_only)


def _lab() -> tuple[CountingUow, ReadLabVersion]:
    store = InMemoryStore()
    uow = CountingUow(store)
    register = RegisterDevice(uow, SettableClock(), SequentialIds())
    for name in ("alpha", "beta"):
        register(RegisterDeviceRequest(name=name, actor="test"))
    uow.opened.clear()
    return uow, ReadLabVersion(uow)


def test_the_version_and_the_page_come_from_one_read_only_unit_of_work() -> None:
    uow, lab_version = _lab()
    seen: list[str] = []

    def known(version: str) -> bool:
        seen.append(version)
        return False

    version, page = lab_version.then_read(
        known, lambda u: ListDevices.read(u, DeviceFilter(), 10, None)
    )
    assert uow.opened == [True]
    assert seen == [version] == [lab_version()]
    assert page is not None and [d.name for d in page.items] == ["alpha", "beta"]


def test_a_known_version_reads_nothing_more() -> None:
    uow, lab_version = _lab()
    reads: list[Any] = []
    version, page = lab_version.then_read(lambda v: True, reads.append)
    assert page is None and reads == []
    assert uow.opened == [True]
    assert version == lab_version()


def test_the_version_is_read_before_the_page() -> None:
    _, lab_version = _lab()
    order: list[str] = []

    def known(version: str) -> bool:
        order.append("version")
        return False

    def read(u: Any) -> str:
        order.append("page")
        return "page"

    assert lab_version.then_read(known, read)[1] == "page"
    assert order == ["version", "page"]


def test_a_purge_in_memory_keeps_the_newest_change_so_no_id_comes_back(lab) -> None:
    """As in SQL: a purge of the whole log made the next change id 1 again."""
    lab.add_device("meter-1")
    lab.add_device("meter-2")
    newest = lab.store.changes[-1].id
    with lab.new_uow() as uow:
        assert uow.changes.purge(datetime.now(UTC) + timedelta(days=1)) >= 1
        uow.commit()
    assert [c.id for c in lab.store.changes] == [newest]
    lab.add_device("meter-3")
    assert lab.store.changes[-1].id > newest
